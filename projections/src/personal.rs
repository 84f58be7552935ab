//! How opened personal data appears in read models: readable while the owner's key exists,
//! a fixed marker once it has been erased. Phone numbers appear only masked.

use domain::PhoneNumber;

/// What a read model shows where erased personal data used to be.
pub const ERASED: &str = "已删除 / erased";

pub fn readable(opened: Option<String>) -> String {
    opened.unwrap_or_else(|| ERASED.to_owned())
}

/// `li***@example.com`: the first character and the domain.
pub fn masked_email(opened: Option<String>) -> String {
    match opened {
        Some(address) => match address.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".to_owned(),
        },
        None => ERASED.to_owned(),
    }
}

pub fn masked_phone(opened: Option<String>) -> String {
    match opened.as_deref().map(PhoneNumber::parse) {
        Some(Ok(phone)) => phone.masked(),
        Some(Err(_)) => "***".to_owned(),
        None => ERASED.to_owned(),
    }
}
