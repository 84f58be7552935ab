//! How opened personal data appears in read models: readable while the owner's key exists,
//! a fixed marker once it has been erased. Phone numbers appear only masked.

use domain::PhoneNumber;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

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

/// The filters people searches share: part of the name (any script, Chinese included), the tail
/// of the masked phone number, a group, and the keyset of the previous page. The query must
/// select from a view with `name`, `phone_masked` and `groups`, keyed by `id_column`.
pub fn push_person_filters(
    query: &mut QueryBuilder<'_, Postgres>,
    text: Option<&str>,
    phone_tail: Option<&str>,
    group: Option<&str>,
    after: Option<&(String, Uuid)>,
    id_column: &str,
) {
    if let Some(text) = text {
        // Every term of the query among the row's GIN-indexed terms (see `search`).
        let terms = crate::search::query_terms(text);
        if terms.is_empty() {
            query.push(" AND false");
        }
        query
            .push(" AND search_terms @> ")
            .push_bind(terms)
            .push("::text[]");
    }
    if let Some(tail) = phone_tail {
        query
            .push(" AND right(phone_masked, length(")
            .push_bind(tail.to_owned())
            .push(")) = ")
            .push_bind(tail.to_owned());
    }
    if let Some(group) = group {
        query
            .push(" AND groups @> ARRAY[")
            .push_bind(group.to_owned())
            .push("]::text[]");
    }
    if let Some((name, id)) = after {
        query
            .push(format!(" AND (name, {id_column}) > ("))
            .push_bind(name.clone())
            .push(", ")
            .push_bind(*id)
            .push(")");
    }
}
