//! The access rule of every route: who may call it, by method and path template.

use super::*;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Roles(&'static [Role]),
}

/// One route and its access rule, as the OpenAPI document states it. The authorisation
/// middleware, the document's 401 and 403 answers and the role tests read it.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

/// Every route of `document` and its access rule. Each handler's `#[utoipa::path]` says who
/// may call it in `security`: `(("bearer" = ["admin", …]))` for the roles named, `(())` for
/// anyone. An operation that says neither is left out (and logged), and the authorisation
/// middleware refuses a route missing from the table: access must be stated, never assumed.
pub fn access_rules(document: &'static utoipa::openapi::OpenApi) -> Vec<RouteSpec> {
    let mut routes = Vec::new();
    for (path, item) in &document.paths.paths {
        let operations = [
            (Method::GET, &item.get),
            (Method::PUT, &item.put),
            (Method::POST, &item.post),
            (Method::DELETE, &item.delete),
            (Method::PATCH, &item.patch),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let Some(access) = stated_access(operation) else {
                tracing::error!(%method, path, "route states no access rule");
                continue;
            };
            routes.push(RouteSpec {
                method,
                path: path.as_str(),
                access,
            });
        }
    }
    routes
}

/// Who an operation says may call it; `None` when it does not say.
pub fn stated_access(operation: &utoipa::openapi::path::Operation) -> Option<Access> {
    let requirements = serde_json::to_value(operation.security.as_ref()?).ok()?;
    let requirements = requirements.as_array()?;
    if requirements.iter().any(|requirement| {
        requirement
            .as_object()
            .is_some_and(|schemes| schemes.is_empty())
    }) {
        return Some(Access::Public);
    }
    let names: Vec<&str> = requirements
        .iter()
        .filter_map(|requirement| requirement.get("bearer")?.as_array())
        .flatten()
        .filter_map(|name| name.as_str())
        .collect();
    let roles: Vec<Role> = names
        .iter()
        .map(|name| serde_json::from_value(serde_json::Value::from(*name)).ok())
        .collect::<Option<_>>()?;
    if roles.is_empty() {
        return None;
    }
    // Kept for the life of the process: the table is built once, from the one document.
    Some(Access::Roles(roles.leak()))
}

/// The rule of one route, by method and path template.
pub fn route_spec<'a>(
    routes: &'a [RouteSpec],
    method: &Method,
    path: &str,
) -> Option<&'a RouteSpec> {
    routes
        .iter()
        .find(|spec| spec.method == method && spec.path == path)
}
