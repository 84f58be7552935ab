//! The application's one error type: what went wrong, without saying how a protocol shows it.
//!
//! A refusal (the domain said no, with its reason) is told apart from a failure to do the work
//! (the database is away, something broke); the HTTP layer maps each to a status and a problem.

use cqrs_es::AggregateError;
use domain::message::{Explain, Text};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such thing (or not one the caller may see).
    #[error("{0}")]
    NotFound(Text),
    /// The domain refused the command; `text` says why, by its code in the message table.
    #[error("{text}")]
    Refused { kind: Refusal, text: Text },
    /// Another writer changed the same stream first; nothing of this command was written.
    #[error("concurrent-modification")]
    Conflict,
    /// A part the work needs cannot be reached (the database, a provider).
    #[error("unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else, with its source chain kept for the log.
    #[error("internal")]
    Internal(#[source] anyhow::Error),
}

/// The kinds of refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The input is well-formed but not acceptable.
    Invalid,
    /// The command does not fit the current state.
    IllegalState,
    /// The caller may not do this to this thing.
    Forbidden,
    /// A uniqueness rule (already registered, overlapping time).
    Conflict,
    /// The thing named does not exist.
    NotFound,
    /// Asked again too soon.
    TooFrequent { retry_after_seconds: i64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// No such `what` (named in each language: `订单`, `order`).
    pub fn not_found(what_zh: &str, what_en: &str) -> Self {
        Error::NotFound(Text::new("not-found").each("what", what_zh, what_en))
    }

    pub fn refused(kind: Refusal, text: Text) -> Self {
        match kind {
            Refusal::NotFound => Error::NotFound(text),
            kind => Error::Refused { kind, text },
        }
    }

    pub fn invalid(text: Text) -> Self {
        Error::refused(Refusal::Invalid, text)
    }

    pub fn illegal_state(text: Text) -> Self {
        Error::refused(Refusal::IllegalState, text)
    }
}

/// What kind of refusal a domain error is, which the HTTP layer turns into a status. Its words
/// and code are the error's own (`Explain`).
pub trait Classify: Explain + std::error::Error {
    fn refusal(&self) -> Refusal;
}

impl Classify for domain::order::OrderError {
    fn refusal(&self) -> Refusal {
        use domain::order::OrderError as E;
        match self {
            E::NotFound => Refusal::NotFound,
            E::IllegalTransition { .. } => Refusal::IllegalState,
            E::NotAssignedWorker | E::NotOwner => Refusal::Forbidden,
            E::WorkerNotEligible(_)
            | E::AlreadyTaken
            | E::NotOpenForGrab
            | E::AlreadyPassed
            | E::NotDue { .. }
            | E::StageBackwards
            | E::NoPreferredWorker
            | E::SameWorker
            | E::TooFar { .. }
            | E::OutsideArrivalWindow { .. } => Refusal::IllegalState,
            E::PingTooFrequent { seconds } => Refusal::TooFrequent {
                retry_after_seconds: *seconds,
            },
            E::PositionRequired | E::InaccurateFix { .. } => Refusal::Invalid,
            E::PriceOutOfRange { .. }
            | E::BadQuantity { .. }
            | E::BadDuration { .. }
            | E::StartInPast
            | E::TotalOverflow
            | E::AmountMismatch { .. }
            | E::BadRating
            | E::UnknownTag(_)
            | E::SamePrice
            | E::ReasonRequired
            | E::FeeShareNotToWorker => Refusal::Invalid,
            E::PriceRiseAfterPayment => Refusal::IllegalState,
            E::ReviewWindowClosed | E::ReviewWindowOpen | E::AlreadyReplied | E::AlreadyHidden => {
                Refusal::IllegalState
            }
        }
    }
}

impl Classify for domain::worker::WorkerError {
    fn refusal(&self) -> Refusal {
        use domain::worker::WorkerError as E;
        match self {
            E::NotFound | E::NoSuchCertificate => Refusal::NotFound,
            E::AlreadyRegistered | E::CertificateExists => Refusal::Conflict,
            E::Suspended
            | E::NotSuspended
            | E::IdentityMissing
            | E::BackgroundCheckMissing
            | E::BackgroundCheckHit => Refusal::IllegalState,
            E::Overlap { .. } => Refusal::Conflict,
            E::Unavailable => Refusal::IllegalState,
            E::NoSkills
            | E::EmptyWindow
            | E::ReasonRequired
            | E::SkillNotDeclared
            | E::BadGroups { .. }
            | E::Invalid(_) => Refusal::Invalid,
        }
    }
}

impl Classify for domain::customer::CustomerError {
    fn refusal(&self) -> Refusal {
        use domain::customer::CustomerError as E;
        match self {
            E::NotFound | E::NoSuchAddress => Refusal::NotFound,
            E::AlreadyRegistered | E::AddressExists => Refusal::Conflict,
            E::Suspended | E::NotSuspended => Refusal::IllegalState,
            E::TooManyAddresses | E::TooManyBlocked | E::BadGroups { .. } | E::Invalid(_) => {
                Refusal::Invalid
            }
        }
    }
}

impl Classify for domain::payment::PaymentError {
    fn refusal(&self) -> Refusal {
        use domain::payment::PaymentError as E;
        match self {
            E::NotFound | E::NoSuchRefund => Refusal::NotFound,
            E::AlreadyExists | E::OtherTransaction => Refusal::Conflict,
            E::IllegalState(_) => Refusal::IllegalState,
            E::AmountMismatch { .. }
            | E::Currency(_)
            | E::RefundTooLarge { .. }
            | E::EmptyRefund
            | E::BadCommission
            | E::ShareTooLarge { .. }
            | E::ReasonRequired => Refusal::Invalid,
        }
    }
}

impl Classify for domain::wallet::WalletError {
    fn refusal(&self) -> Refusal {
        use domain::wallet::WalletError as E;
        match self {
            E::NotFound | E::NoSuchWithdrawal => Refusal::NotFound,
            E::WithdrawalState(_) => Refusal::IllegalState,
            E::InsufficientFunds { .. }
            | E::EmptyWithdrawal
            | E::ReasonRequired
            | E::CannotRecover { .. } => Refusal::Invalid,
            E::Risk(refusal) => match refusal {
                domain::wallet::WithdrawalRisk::BelowMinimum(_)
                | domain::wallet::WithdrawalRisk::OverDailyMaximum(_) => Refusal::Invalid,
                _ => Refusal::IllegalState,
            },
            E::AccountChanged => Refusal::Conflict,
        }
    }
}

impl Classify for domain::interview::InterviewError {
    fn refusal(&self) -> Refusal {
        use domain::interview::InterviewError as E;
        match self {
            E::NotFound => Refusal::NotFound,
            E::AlreadyExists => Refusal::Conflict,
            E::NotParticipant => Refusal::Forbidden,
            E::IllegalState(_) | E::OwnProposal | E::NotTheTime | E::TooEarlyForOutcome => {
                Refusal::IllegalState
            }
            E::NoInterviewForService | E::StartInPast | E::ReasonRequired => Refusal::Invalid,
        }
    }
}

impl Classify for domain::commission::CommissionError {
    fn refusal(&self) -> Refusal {
        Refusal::Invalid
    }
}

impl Classify for domain::activity::PresenceError {
    fn refusal(&self) -> Refusal {
        match self {
            domain::activity::PresenceError::SomeoneElse => Refusal::Forbidden,
            domain::activity::PresenceError::BadVersion => Refusal::Invalid,
        }
    }
}

impl<E: Classify> From<AggregateError<E>> for Error {
    fn from(error: AggregateError<E>) -> Self {
        match error {
            AggregateError::UserError(refusal) => Error::from_refusal(refusal),
            AggregateError::AggregateConflict => Error::Conflict,
            AggregateError::DatabaseConnectionError(cause) => {
                Error::Unavailable(anyhow::anyhow!(cause).context("writing events"))
            }
            AggregateError::DeserializationError(cause)
            | AggregateError::UnexpectedError(cause) => {
                Error::Internal(anyhow::anyhow!(cause).context("writing events"))
            }
        }
    }
}

impl Error {
    /// A domain refusal outside a command (checked before one is sent).
    pub fn from_refusal(refusal: impl Classify) -> Self {
        Error::refused(refusal.refusal(), refusal.text())
    }
}

impl From<domain::order::OrderError> for Error {
    fn from(error: domain::order::OrderError) -> Self {
        Error::from_refusal(error)
    }
}

impl From<domain::ValueError> for Error {
    fn from(error: domain::ValueError) -> Self {
        Error::invalid(error.text())
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Error::Unavailable(error.into())
            }
            other => Error::Internal(other.into()),
        }
    }
}

impl From<anyhow::Error> for Error {
    fn from(error: anyhow::Error) -> Self {
        Error::Internal(error)
    }
}

impl From<vault::VaultError> for Error {
    /// Sealing for an erased person is refused; the rest is a failure.
    fn from(error: vault::VaultError) -> Self {
        match error {
            vault::VaultError::Erased(_) => {
                Error::refused(Refusal::Conflict, Text::new("person-erased"))
            }
            vault::VaultError::Database(cause) => cause.into(),
            other => Error::Internal(other.into()),
        }
    }
}
