//! The local Hatchet engine is the real one, at the pinned version, and our token works.

use hatchet_e2e::World;

const EXPECTED_VERSION: &str = "v0.104.7";

#[tokio::test]
async fn engine_reports_pinned_version_and_accepts_token() {
    let world = World::load().expect("local world");
    let http = reqwest::Client::new();
    let base = world.server_url().unwrap();

    let version: serde_json::Value = http
        .get(format!("{base}/api/v1/version"))
        .send()
        .await
        .expect("GET /api/v1/version")
        .error_for_status()
        .expect("version status")
        .json()
        .await
        .expect("version body");
    assert_eq!(version["version"], EXPECTED_VERSION, "engine version: {version}");

    let tenant = world.tenant_id().unwrap();
    let claims = world.token_claims().unwrap();
    assert_eq!(claims.sub, tenant, "token subject is the tenant");
    assert_eq!(claims.server_url.as_deref(), Some(base), "token server_url claim");

    let workers = http
        .get(format!("{base}/api/v1/tenants/{tenant}/worker"))
        .bearer_auth(world.token().unwrap())
        .send()
        .await
        .expect("GET workers");
    let status = workers.status();
    let body = workers.text().await.unwrap_or_default();
    assert_eq!(status, 200, "list workers: {body}");
    let parsed: serde_json::Value = serde_json::from_str(&body).expect("workers JSON");
    assert!(
        parsed.get("rows").is_some() || parsed.get("pagination").is_some(),
        "{parsed}"
    );

    let denied = http
        .get(format!("{base}/api/v1/tenants/{tenant}/worker"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .expect("GET workers without a valid token");
    assert!(
        matches!(denied.status().as_u16(), 401 | 403),
        "a bad token must be refused, got {}",
        denied.status()
    );
}
