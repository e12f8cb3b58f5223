//! The five state icons, built into the binary as PNG and decoded once.

use crate::tray_state::IconKind;

fn png(kind: IconKind) -> &'static [u8] {
    #[cfg(target_os = "macos")]
    {
        match kind {
            IconKind::Ok => include_bytes!("../../icons/tray/ok-template@2x.png"),
            IconKind::Degraded => include_bytes!("../../icons/tray/degraded-template@2x.png"),
            IconKind::Down => include_bytes!("../../icons/tray/down-template@2x.png"),
            IconKind::Running => include_bytes!("../../icons/tray/running-template@2x.png"),
            IconKind::Paused => include_bytes!("../../icons/tray/paused-template@2x.png"),
        }
    }
    #[cfg(not(target_os = "macos"))]
    {
        match kind {
            IconKind::Ok => include_bytes!("../../icons/tray/ok@2x.png"),
            IconKind::Degraded => include_bytes!("../../icons/tray/degraded@2x.png"),
            IconKind::Down => include_bytes!("../../icons/tray/down@2x.png"),
            IconKind::Running => include_bytes!("../../icons/tray/running@2x.png"),
            IconKind::Paused => include_bytes!("../../icons/tray/paused@2x.png"),
        }
    }
}

/// An icon as 8-bit RGBA pixels, with its width and height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgba {
    pub pixels: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Decodes a PNG to RGBA (palette, grey and 16-bit ones expanded).
pub fn decode(bytes: &[u8]) -> Result<Rgba, String> {
    let mut d = png::Decoder::new(std::io::Cursor::new(bytes));
    d.set_transformations(
        png::Transformations::normalize_to_color8() | png::Transformations::ALPHA,
    );
    let mut r = d.read_info().map_err(|e| e.to_string())?;
    let size = r
        .output_buffer_size()
        .ok_or_else(|| "the picture is too large".to_owned())?;
    let mut buf = vec![0; size];
    let info = r.next_frame(&mut buf).map_err(|e| e.to_string())?;
    buf.truncate(info.buffer_size());
    let pixels = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::GrayscaleAlpha => buf
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        other => return Err(format!("unexpected colour type {other:?}")),
    };
    Ok(Rgba {
        pixels,
        width: info.width,
        height: info.height,
    })
}

/// The icon of a state.
pub fn icon(kind: IconKind) -> Result<Rgba, String> {
    decode(png(kind)).map_err(|e| format!("the {} icon: {e}", kind.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_icon_decodes_to_square_rgba() {
        for kind in [
            IconKind::Ok,
            IconKind::Degraded,
            IconKind::Down,
            IconKind::Running,
            IconKind::Paused,
        ] {
            let i = icon(kind).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(i.width, i.height);
            assert_eq!(i.pixels.len(), (i.width * i.height * 4) as usize);
            // Not blank: some pixel is opaque.
            assert!(
                i.pixels.chunks_exact(4).any(|p| p[3] > 200),
                "{}",
                kind.name()
            );
        }
        assert!(decode(b"not a png").is_err());
    }
}
