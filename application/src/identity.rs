//! The port to an outside identity provider (WeChat sign-in).

/// Why a provider did not name the person.
#[derive(Debug, thiserror::Error)]
pub enum IdentityRefusal {
    /// The code is wrong, spent or expired.
    #[error("the provider refused the code")]
    BadCode,
    /// The provider cannot be reached, or answered nonsense.
    #[error("the identity provider is unavailable")]
    Unavailable(#[source] anyhow::Error),
}

#[async_trait::async_trait]
pub trait IdentityProvider: Send + Sync {
    /// Where the browser goes to sign in, carrying our `state`.
    fn authorize_url(&self, state: &str) -> anyhow::Result<String>;

    /// Exchanges the code the browser brought back, server to server, for the person's stable
    /// identifier at the provider.
    async fn exchange_code(&self, code: &str) -> Result<String, IdentityRefusal>;
}
