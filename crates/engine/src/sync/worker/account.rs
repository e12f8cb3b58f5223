//! Signing in and out, enrolling this device, and losing either.

use super::*;

impl Syncer {
    pub async fn account(&self) -> Result<Option<Account>, SyncError> {
        self.load(ACCOUNT).await
    }

    pub async fn enrollment(&self) -> Result<Option<Enrolled>, SyncError> {
        self.load(ENROLLMENT).await
    }

    /// The server to sign in to: given, else the configured one, else the
    /// one this device is enrolled with or was signed in to.
    pub(super) async fn server_for(&self, given: Option<&str>) -> Result<String, SyncError> {
        if let Some(s) = given {
            return Ok(s.trim().to_owned());
        }
        if let Some(s) = self.rt.config().sync.server {
            return Ok(s);
        }
        if let Some(e) = self.enrollment().await? {
            return Ok(e.server);
        }
        if let Some(a) = self.account().await? {
            return Ok(a.server);
        }
        Err(SyncError::NoServer)
    }

    /// Signs in. `Err(Api(MfaRequired))` asks for a code: call again with it.
    pub async fn login(
        &self,
        server: Option<&str>,
        username: &str,
        password: &str,
        mfa_code: Option<&str>,
    ) -> Result<Account, SyncError> {
        let server = self.server_for(server).await?;
        let api = self.api(&server)?;
        if let Some(e) = self.enrollment().await? {
            if !same_server(&e.server, &server) {
                return Err(SyncError::ServerMismatch {
                    enrolled: e.server,
                    signed_in: server,
                });
            }
        }
        let tokens = api.login(username, password, mfa_code).await?;
        let previous = self.account().await?;
        let key = format!("session-{}", uuid::Uuid::now_v7());
        let pref = self.rt.config().sync.secret_store;
        let saved = self.secrets.save(&key, &tokens, pref).await?;
        let account = Account {
            server: api.base().as_str().trim_end_matches('/').to_owned(),
            username: username.to_owned(),
            user_id: tokens.user_id,
            secret_key: key,
            secret_store: saved.kind,
            secret_note: saved.note,
            signed_in_at: Utc::now(),
            signed_out: None,
        };
        self.save(ACCOUNT, account.clone()).await?;
        if let Some(old) = previous {
            if let Err(e) = self.secrets.delete(&old.secret_key, old.secret_store).await {
                tracing::warn!("the previous session's tokens could not be removed: {e}");
            }
        }
        // Results that waited for a sign-in can go now.
        self.save(
            PROGRESS,
            Progress {
                not_before: None,
                failures: 0,
                ..self.progress().await?
            },
        )
        .await?;
        self.sync_soon();
        Ok(account)
    }

    /// Signs out: the server revokes the refresh tokens (best effort when it
    /// cannot be reached), the tokens are forgotten here. The enrollment and
    /// the queue stay.
    pub async fn logout(&self) -> Result<Option<Account>, SyncError> {
        let Some(account) = self.account().await? else {
            return Ok(None);
        };
        match self
            .secrets
            .load(&account.secret_key, account.secret_store)
            .await
        {
            Ok(Some(t)) if account.signed_out.is_none() => {
                if let Err(e) = self.api(&account.server)?.logout(&t.access_token).await {
                    tracing::warn!("the server did not confirm the sign-out: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("the saved session could not be read: {e}"),
        }
        self.secrets
            .delete(&account.secret_key, account.secret_store)
            .await?;
        self.rt.with_store(|s| s.state_delete(ACCOUNT)).await?;
        Ok(Some(account))
    }

    /// Enrolls this device once with an organization's enrollment secret.
    pub async fn enroll(
        &self,
        server: Option<&str>,
        org_id: i64,
        secret: &str,
        name: Option<&str>,
        force: bool,
    ) -> Result<Enrolled, SyncError> {
        if let Some(e) = self.enrollment().await? {
            // A device the server has lost can enroll again: no duplicate.
            if !force && e.lost.is_none() {
                return Err(SyncError::AlreadyEnrolled {
                    server: e.server,
                    id: e.id,
                    organization_id: e.organization_id,
                });
            }
        }
        let account = self.account().await?;
        let server = match (server, &account) {
            (Some(s), _) => s.trim().to_owned(),
            (None, Some(a)) => a.server.clone(),
            (None, None) => self.server_for(None).await?,
        };
        let api = self.api(&server)?;
        let device = DeviceInfo::detect();
        let device_name = name.map_or_else(|| device.hostname.clone(), str::to_owned);
        let req = EnrollRequest {
            enrollment_secret: secret.to_owned(),
            org_id,
            device_name: device_name.clone(),
            device_type: "desktop".into(),
            os_type: std::env::consts::OS.to_owned(),
            os_version: format!("{} {}", device.os, device.os_version),
            hardware_id: device.device_id.clone(),
            device_metadata: serde_json::json!({
                "client": crate::version::client(),
                "client_version": crate::version::VERSION,
                "arch": device.arch,
            }),
        };
        let access = match &account {
            Some(a) if a.signed_out.is_none() && same_server(&a.server, &server) => self
                .secrets
                .load(&a.secret_key, a.secret_store)
                .await?
                .map(|t| t.access_token),
            _ => None,
        };
        let e = api.enroll(access.as_deref(), &req).await?;
        let enrolled = Enrolled {
            server: api.base().as_str().trim_end_matches('/').to_owned(),
            id: e.id,
            device_id: e.device_id,
            organization_id: e.organization_id,
            device_name,
            enrolled_at: Utc::now(),
            lost: None,
        };
        self.save(ENROLLMENT, enrolled.clone()).await?;
        // Results that waited for an enrollment can go now.
        self.save(
            PROGRESS,
            Progress {
                not_before: None,
                failures: 0,
                last_error: None,
                ..self.progress().await?
            },
        )
        .await?;
        self.sync_soon();
        Ok(enrolled)
    }

    /// Marks the enrollment lost: nothing is sent until the person enrolls
    /// again, and they are told.
    pub(super) async fn lose_enrollment(
        &self,
        enrolled: &Enrolled,
        reason: &str,
    ) -> Result<(), SyncError> {
        let mut e = enrolled.clone();
        e.lost = Some(Lost {
            at: Utc::now(),
            reason: reason.to_owned(),
        });
        self.save(ENROLLMENT, e).await?;
        tracing::warn!(
            "device {} is no longer enrolled with {}: {reason}",
            enrolled.id,
            enrolled.server
        );
        self.rt.emit(Event::EnrollmentLost {
            message: format!(
                "the server {} no longer knows this device ({reason}). Results are kept and will upload after you enroll again (`waddleperf enroll --force`, or Settings > Account)",
                enrolled.server
            ),
        });
        Ok(())
    }

    pub(super) async fn sign_out(&self, account: &Account, reason: &str) -> Result<(), SyncError> {
        let mut a = account.clone();
        a.signed_out = Some(SignedOut {
            at: Utc::now(),
            reason: reason.to_owned(),
        });
        self.save(ACCOUNT, a).await?;
        if let Err(e) = self
            .secrets
            .delete(&account.secret_key, account.secret_store)
            .await
        {
            tracing::warn!("the ended session's tokens could not be removed: {e}");
        }
        tracing::warn!("signed out of {}: {reason}", account.server);
        self.rt.emit(Event::SignedOut {
            message: format!(
                "signed out of {}: {reason}. Results are kept and will upload after you sign in again",
                account.server
            ),
        });
        Ok(())
    }
}

/// Whether two server URLs name the same server (trailing slashes aside).
pub(super) fn same_server(a: &str, b: &str) -> bool {
    a.trim().trim_end_matches('/') == b.trim().trim_end_matches('/')
}
