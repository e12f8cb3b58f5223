-- Schema version 4: an HTTP target's identity names its protocol when one is
-- forced (`https://example.com/ http2`), so AutoPerf's tier 3 HTTP/1.1 and
-- HTTP/2 copies of a target are series of their own; they used to land in
-- the tier 1 target's series. Tier 3 HTTP results move by the protocol they
-- recorded (one that failed before any answer has none and stays); the
-- roll-ups are then rebuilt from the results (store/rollups.rs).
UPDATE results
SET target = target || CASE json_extract(metrics, '$.http_version')
                          WHEN '1.1' THEN ' http1'
                          ELSE ' http2'
                      END
WHERE test_type = 'http'
  AND tier = 3
  AND json_extract(metrics, '$.http_version') IN ('1.1', '2');
