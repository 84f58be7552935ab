//! The OpenAPI 3 document of every route, served at `/api/openapi.json`.

use std::sync::LazyLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::routes::interviews;
use crate::state::AppState;

/// What the document says beyond its operations: its title, the schemas no operation names,
/// and the three routes the `signaling` member serves (documented here, routed there).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Anjia 安家 API",
        version = "1",
        description = "家政服务平台接口 / Home-services platform API. Money is in integer fen; times are UTC."
    ),
    paths(
        interviews::signaling_socket,
        interviews::call_page,
        interviews::call_script
    ),
    components(schemas(
        crate::error::Problem,
        crate::schemas::Service,
        crate::schemas::Datum,
        crate::schemas::WorkerLevel,
        crate::schemas::Method,
        crate::schemas::Certificate,
        crate::schemas::InterviewOutcome,
        crate::schemas::OrderSort,
        crate::schemas::SortDirection,
        crate::schemas::IncomeKind,
        crate::routes::reports::ReportFormat,
        crate::routes::reports::ActivityRole,
    ))
)]
struct ApiDoc;

/// The document of every route: each handler's `#[utoipa::path]` (its path, method and, in
/// `security`, who may call it), gathered by the same routers the server serves, then made to
/// say what the server does beside (see `Conformance`). Built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(|| {
        let mut document = routes().into_openapi();
        BearerAuth.modify(&mut document);
        Conformance.modify(&mut document);
        document
    });
    &DOCUMENT
}

/// Every route and who may call it, as the document states (see `auth::access_rules`).
pub static ROUTES: LazyLock<Vec<crate::auth::RouteSpec>> =
    LazyLock::new(|| crate::auth::access_rules(document()));

/// Every documented route with its handler: the server serves these, the document describes
/// them, and the access rule of each is read from the document (`ROUTES`).
pub fn routes() -> OpenApiRouter<AppState> {
    use crate::routes::*;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(accounts::router())
        .merge(sessions::router())
        .merge(verification::router())
        .merge(workers::router())
        .merge(orders::router())
        .merge(dispatch::router())
        .merge(payments::router())
        .merge(wallet::router())
        .merge(commission::router())
        .merge(audit::router())
        .merge(reviews::router())
        .merge(corrections::router())
        .merge(interviews::router())
        .merge(reports::router())
        .routes(routes!(crate::metrics::endpoint))
        .merge(profile::router())
        .merge(activity::router())
        .merge(onboarding::router())
        .merge(users::router())
        .merge(oauth::router())
        .merge(security::router())
        .merge(availability::router())
        .merge(live::router())
        .merge(crate::notifications::router())
        .merge(admin::router())
        .merge(dashboard::router())
        .routes(routes!(openapi_document))
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Makes the document say exactly what the server does, for every operation at once, from the
/// same facts the server acts on: each operation's access rule (401 and 403), the shape of
/// each operation (a body can be malformed, 400; too large, 413; not JSON, 415; invalid, 422;
/// a path can name nothing, 404; a retry key can be in use or reused, 409 and 422), errors as
/// `application/problem+json`, the headers every answer may carry, and operation ids that are
/// unique (`<tag>_<function>`).
struct Conformance;

const PROBLEM_REF: &str = "#/components/schemas/Problem";

fn problem_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    utoipa::openapi::ResponseBuilder::new()
        .description(description)
        .content(
            crate::error::PROBLEM_JSON,
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::new(PROBLEM_REF)))
                .build(),
        )
        .build()
        .into()
}

fn string_header(description: &str) -> utoipa::openapi::header::Header {
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String),
        )
        .description(Some(description))
        .build()
}

fn integer_header(description: &str) -> utoipa::openapi::header::Header {
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::Integer),
        )
        .description(Some(description))
        .build()
}

fn min_position_parameters() -> [utoipa::openapi::path::Parameter; 2] {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::Required;
    let schema = || {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9]+-[0-9]+$"))
    };
    [
        ParameterBuilder::new()
            .name("Anjia-Min-Position")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some("Answer from views that include the write whose answer carried this `Anjia-Position` (waits up to 5 s, else 503 `/problems/catching-up`)."))
            .schema(Some(schema()))
            .build(),
        ParameterBuilder::new()
            .name(crate::positions::MIN_POSITION_PARAMETER)
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some("The same as the `Anjia-Min-Position` header."))
            .schema(Some(schema()))
            .build(),
    ]
}

/// Writes every bounded text field (`Line<N>`, `Paragraph<N>`) in place as a string with its
/// `maxLength`, instead of a reference: query parameters' references are not collected as
/// components, and a client reads `string` more easily than a named type per bound.
fn inline_text_schemas(openapi: &mut utoipa::openapi::OpenApi) {
    fn text_schema(name: &str) -> Option<serde_json::Value> {
        let (kind, bound) = if let Some(bound) = name.strip_prefix("Line") {
            ("One line of text, no control characters; trimmed.", bound)
        } else if let Some(bound) = name.strip_prefix("Paragraph") {
            (
                "Text; line breaks allowed, no other control characters; trimmed.",
                bound,
            )
        } else {
            return None;
        };
        let max: u64 = bound.parse().ok()?;
        Some(serde_json::json!({"type": "string", "maxLength": max, "description": kind}))
    }
    fn rewrite(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(members) => {
                let inlined = members
                    .get("$ref")
                    .and_then(|reference| reference.as_str())
                    .and_then(|reference| reference.strip_prefix("#/components/schemas/"))
                    .and_then(text_schema);
                if let Some(serde_json::Value::Object(schema)) = inlined {
                    members.remove("$ref");
                    for (key, member) in schema {
                        // A field's own description says more than the type's.
                        members.entry(key).or_insert(member);
                    }
                }
                for member in members.values_mut() {
                    rewrite(member);
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(rewrite),
            _ => {}
        }
    }
    let Ok(mut document) = serde_json::to_value(&*openapi) else {
        return;
    };
    rewrite(&mut document);
    if let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(|schemas| schemas.as_object_mut())
    {
        schemas.retain(|name, _| text_schema(name).is_none());
    }
    if let Ok(rewritten) = serde_json::from_value(document) {
        *openapi = rewritten;
    }
}

impl Modify for Conformance {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        inline_text_schemas(openapi);
        use utoipa::openapi::path::ParameterIn;
        let mut seen_ids = std::collections::HashSet::new();
        for (_path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (axum::http::Method::GET, &mut item.get),
                (axum::http::Method::PUT, &mut item.put),
                (axum::http::Method::POST, &mut item.post),
                (axum::http::Method::DELETE, &mut item.delete),
                (axum::http::Method::PATCH, &mut item.patch),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation.as_mut() else {
                    continue;
                };
                // Unique ids: the tag names the area, the function the operation.
                let tag = operation
                    .tags
                    .as_ref()
                    .and_then(|tags| tags.first())
                    .cloned()
                    .unwrap_or_else(|| "api".to_owned());
                let function = operation.operation_id.clone().unwrap_or_default();
                let mut id = format!("{tag}_{function}");
                if !seen_ids.insert(id.clone()) {
                    id = format!("{id}_{}", method.as_str().to_ascii_lowercase());
                    seen_ids.insert(id.clone());
                }
                operation.operation_id = Some(id);

                let signed_in_only = matches!(
                    crate::auth::stated_access(operation),
                    Some(crate::auth::Access::Roles(_))
                );
                let responses = &mut operation.responses.responses;
                // Every error is a problem document.
                for (status, response) in responses.iter_mut() {
                    let is_error = status.starts_with('4') || status.starts_with('5');
                    if let (true, utoipa::openapi::RefOr::T(response)) = (is_error, response) {
                        if let Some(content) = response.content.shift_remove("application/json") {
                            response
                                .content
                                .insert(crate::error::PROBLEM_JSON.to_owned(), content);
                        }
                    }
                }
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem_response(description));
                };
                if signed_in_only {
                    add("401", "未登录或会话已失效 / no valid access token");
                    add("403", "角色无权执行 / the caller's role may not do this");
                }
                let parameters = operation.parameters.as_deref().unwrap_or_default();
                if parameters
                    .iter()
                    .any(|parameter| matches!(parameter.parameter_in, ParameterIn::Path))
                {
                    add("404", "不存在 / no such resource");
                }
                if parameters
                    .iter()
                    .any(|parameter| matches!(parameter.parameter_in, ParameterIn::Query))
                {
                    add("422", "参数无效 / an invalid parameter");
                }
                if operation.request_body.is_some() {
                    add(
                        "400",
                        "请求体不是合法 JSON / the body is not well-formed JSON",
                    );
                    add("413", "请求体过大 / the body is too large");
                    add(
                        "415",
                        "请求体必须是 JSON / the body must be application/json",
                    );
                    add("422", "字段无效 / an invalid field");
                }
                let mutating = method != axum::http::Method::GET;
                if mutating {
                    add("409", "与当前状态冲突，或相同幂等键的请求仍在处理 / the request conflicts with the current state, or one with this Idempotency-Key is in progress");
                    add("422", "输入无效，或幂等键已用于另一个请求 / invalid input, or the Idempotency-Key was used for another request");
                    add("400", "请求头无效 / a malformed header");
                } else {
                    add(
                        "422",
                        "参数无效 / an invalid parameter (`min_position` included)",
                    );
                    add("503", "视图尚未追上所给位置，或服务暂不可用 / the views have not caught up with Anjia-Min-Position yet, or the service is unavailable");
                }
                // The headers an answer may carry.
                for (status, response) in responses.iter_mut() {
                    let utoipa::openapi::RefOr::T(response) = response else {
                        continue;
                    };
                    if status == "429" || status == "503" {
                        response
                            .headers
                            .entry("Retry-After".to_owned())
                            .or_insert_with(|| {
                                integer_header("几秒后再试 / seconds to wait before trying again")
                            });
                    }
                    if status == "201" {
                        response
                            .headers
                            .entry("Location".to_owned())
                            .or_insert_with(|| {
                                string_header("新资源的地址 / where the new resource is")
                            });
                    }
                    if mutating && status.starts_with('2') {
                        response.headers.entry("Anjia-Position".to_owned()).or_insert_with(|| {
                            string_header("命令提交在日志中的位置 / where the command's events were committed in the log (`<xid>-<position>`); send it back as `Anjia-Min-Position` to read your own write")
                        });
                    }
                    if mutating && !status.starts_with('5') {
                        response.headers.entry("Idempotent-Replayed".to_owned()).or_insert_with(|| {
                            string_header("`true` when this is the stored first answer to the same Idempotency-Key / `true` on a replayed answer")
                        });
                    }
                }
                if !mutating {
                    let parameters = operation.parameters.get_or_insert_with(Vec::new);
                    for parameter in min_position_parameters() {
                        if !parameters
                            .iter()
                            .any(|existing| existing.name == parameter.name)
                        {
                            parameters.push(parameter);
                        }
                    }
                }
            }
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "The OpenAPI 3 document")))]
pub async fn openapi_document() -> axum::Json<&'static utoipa::openapi::OpenApi> {
    axum::Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation states who may call it, so none is left out of the access table (where
    /// the server would refuse it), and the roles it names are roles.
    #[test]
    fn every_operation_states_its_access() {
        let operations: usize = document()
            .paths
            .paths
            .values()
            .map(|item| {
                [&item.get, &item.put, &item.post, &item.delete, &item.patch]
                    .into_iter()
                    .filter(|operation| operation.is_some())
                    .count()
            })
            .sum();
        assert_eq!(ROUTES.len(), operations);
        for path in [
            "/api/v1/signaling",
            "/call",
            "/call.js",
            "/metrics",
            "/healthz",
        ] {
            let rule = crate::auth::route_spec(&ROUTES, &axum::http::Method::GET, path);
            assert_eq!(
                rule.map(|rule| rule.access),
                Some(crate::auth::Access::Public),
                "{path}"
            );
        }
    }

    /// An operation that names no role, or a role that does not exist, states no access.
    #[test]
    fn only_known_roles_or_anyone_count_as_stated() {
        use utoipa::openapi::path::OperationBuilder;
        use utoipa::openapi::security::SecurityRequirement;
        let with = |requirement: Option<SecurityRequirement>| {
            let builder = OperationBuilder::new();
            let builder = match requirement {
                Some(requirement) => builder.security(requirement),
                None => builder,
            };
            crate::auth::stated_access(&builder.build())
        };
        assert_eq!(with(None), None);
        assert_eq!(
            with(Some(SecurityRequirement::default())),
            Some(crate::auth::Access::Public)
        );
        assert_eq!(
            with(Some(SecurityRequirement::new(
                "bearer",
                ["admin", "analyst"]
            ))),
            Some(crate::auth::Access::Roles(&[
                domain::Role::Admin,
                domain::Role::Analyst
            ]))
        );
        assert_eq!(
            with(Some(SecurityRequirement::new("bearer", ["root"]))),
            None
        );
        assert_eq!(
            with(Some(SecurityRequirement::new("bearer", [] as [&str; 0]))),
            None
        );
    }
}
