//! WeChat sign-in (OAuth 2.0 with PKCE on our side): the authorize page's address and the
//! server-to-server exchange of a code for the person's stable identifier.

use application::identity::{IdentityProvider, IdentityRefusal};
use serde::Deserialize;

/// The provider's endpoints and our client registration.
#[derive(Clone)]
pub struct OAuthSettings {
    /// `ANJIA_WECHAT_AUTHORIZE_URL`, e.g. the QR-connect page.
    pub authorize_url: String,
    /// `ANJIA_WECHAT_API_URL`: the base of `/sns/oauth2/access_token` and `/sns/userinfo`.
    pub api_url: String,
    pub app_id: String,
    pub app_secret: String,
    /// Where WeChat sends the browser back to (our web page).
    pub redirect_uri: String,
}

impl std::fmt::Debug for OAuthSettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("OAuthSettings")
            .field("authorize_url", &self.authorize_url)
            .field("api_url", &self.api_url)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

/// WeChat as an identity provider.
pub struct WechatSignIn {
    settings: OAuthSettings,
    client: reqwest::Client,
}

impl WechatSignIn {
    pub fn new(settings: OAuthSettings) -> anyhow::Result<Self> {
        Ok(WechatSignIn {
            settings,
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()?,
        })
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    openid: Option<String>,
    unionid: Option<String>,
    errcode: Option<i64>,
    errmsg: Option<String>,
}

#[async_trait::async_trait]
impl IdentityProvider for WechatSignIn {
    fn authorize_url(&self, state: &str) -> anyhow::Result<String> {
        let mut url = reqwest::Url::parse(&self.settings.authorize_url)
            .map_err(|error| anyhow::anyhow!("the authorize URL: {error}"))?;
        url.query_pairs_mut()
            .append_pair("appid", &self.settings.app_id)
            .append_pair("redirect_uri", &self.settings.redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", "snsapi_login")
            .append_pair("state", state);
        Ok(format!("{url}#wechat_redirect"))
    }

    /// Exchanges the code, server to server, for the person's stable identifier (the `unionid`
    /// when WeChat gives one, else the `openid`).
    async fn exchange_code(&self, code: &str) -> Result<String, IdentityRefusal> {
        let settings = &self.settings;
        let answer: TokenAnswer = self
            .client
            .get(format!(
                "{}/sns/oauth2/access_token",
                settings.api_url.trim_end_matches('/')
            ))
            .query(&[
                ("appid", settings.app_id.as_str()),
                ("secret", settings.app_secret.as_str()),
                ("code", code),
                ("grant_type", "authorization_code"),
            ])
            .send()
            .await
            .map_err(|error| {
                IdentityRefusal::Unavailable(anyhow::anyhow!(error).context("calling WeChat"))
            })?
            .json()
            .await
            .map_err(|error| {
                IdentityRefusal::Unavailable(
                    anyhow::anyhow!(error).context("reading WeChat's answer"),
                )
            })?;
        if let Some(errcode) = answer.errcode.filter(|code| *code != 0) {
            tracing::warn!(
                errcode,
                errmsg = answer.errmsg.unwrap_or_default(),
                "WeChat refused the code"
            );
            return Err(IdentityRefusal::BadCode);
        }
        match (answer.access_token, answer.unionid.or(answer.openid)) {
            (Some(_), Some(subject)) => Ok(subject),
            _ => Err(IdentityRefusal::Unavailable(anyhow::anyhow!(
                "WeChat's answer had no token or identity"
            ))),
        }
    }
}
