//! The runner lifecycle calls (`POST /runners`, `POST /runners/verify`, `DELETE /runners`,
//! `DELETE /runners/managers`) against hand-written wiremock answers: what goes on the wire
//! (method, path, headers, body) and how each documented answer is classified.

use std::time::Duration;

use flotilla_gitlab::{
    AccessLevel, ClientOptions, GitlabError, RegisterParams, Registration, RetryPolicy, RunnerClient, Secret, SystemId,
    Unregistration, Verification,
};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const REGISTRATION_TOKEN: &str = "GR1348941-registration-secret";
const RUNNER_TOKEN: &str = "glrt-runner-secret-token";
const LEGACY_TOKEN: &str = "glrtr-legacy-secret-token";

async fn setup() -> (MockServer, RunnerClient) {
    let server = MockServer::start().await;
    let options = ClientOptions {
        retry: RetryPolicy {
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    };
    let client = RunnerClient::with_options(&server.uri(), options).unwrap();
    (server, client)
}

async fn mount(server: &MockServer, verb: &str, route: &str, answer: ResponseTemplate) {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(answer)
        .expect(1)
        .mount(server)
        .await;
}

fn json_answer(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_string(), "application/json")
}

async fn only_request(server: &MockServer) -> Request {
    let mut requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "exactly one request expected");
    requests.remove(0)
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).map(|v| v.to_str().unwrap())
}

fn system_id() -> SystemId {
    SystemId::parse("s_0123456789ab").unwrap()
}

// ---------------------------------------------------------------------------------------------
// POST /runners

#[tokio::test]
async fn register_sends_the_settings_and_returns_the_credentials() {
    let (server, client) = setup().await;
    mount(
        &server,
        "POST",
        "/api/v4/runners",
        json_answer(
            201,
            json!({"id": 42, "token": LEGACY_TOKEN, "token_expires_at": "2027-01-02T03:04:05.000Z"}),
        ),
    )
    .await;
    let params = RegisterParams {
        description: "k8s".into(),
        tags: vec!["k8s-default".into(), "linux".into()],
        run_untagged: false,
        locked: false,
        access_level: Some(AccessLevel::NotProtected),
        maximum_timeout: Some(7200),
        ..RegisterParams::default()
    };

    let outcome = client
        .register(&Secret::new(REGISTRATION_TOKEN), &params)
        .await
        .unwrap();

    let Registration::Registered(credentials) = outcome else {
        panic!("expected a registration, got {outcome:?}");
    };
    assert_eq!(credentials.id, 42);
    assert_eq!(credentials.token.expose(), LEGACY_TOKEN);
    assert_eq!(
        credentials.token_expires_at.unwrap().to_rfc3339(),
        "2027-01-02T03:04:05+00:00"
    );
    assert!(!format!("{credentials:?}").contains(LEGACY_TOKEN));

    let req = only_request(&server).await;
    assert_eq!(header(&req, "RUNNER-TOKEN"), Some(REGISTRATION_TOKEN));
    assert_eq!(header(&req, "Accept"), Some("application/json"));
    assert_eq!(header(&req, "Content-Type"), Some("application/json"));
    let body: Value = req.body_json().unwrap();
    assert_eq!(body["token"], REGISTRATION_TOKEN);
    assert_eq!(body["description"], "k8s");
    assert_eq!(body["tag_list"], "k8s-default,linux");
    assert_eq!(body["run_untagged"], false);
    assert_eq!(body["locked"], false);
    assert_eq!(body["paused"], false);
    assert_eq!(body["access_level"], "not_protected");
    assert_eq!(body["maximum_timeout"], 7200);
    assert_eq!(body["info"]["name"], "flotilla");
    assert_eq!(body["info"]["version"], flotilla_gitlab::VERSION);
    assert!(body.get("system_id").is_none(), "registration names no manager");
}

#[tokio::test]
async fn register_403_is_a_refused_registration_token() {
    let (server, client) = setup().await;
    mount(
        &server,
        "POST",
        "/api/v4/runners",
        json_answer(403, json!({"message": "403 Forbidden"})),
    )
    .await;
    let outcome = client
        .register(&Secret::new(REGISTRATION_TOKEN), &RegisterParams::default())
        .await
        .unwrap();
    assert_eq!(outcome, Registration::Forbidden);
}

#[tokio::test]
async fn register_validation_error_says_what_gitlab_answered() {
    let (server, client) = setup().await;
    mount(
        &server,
        "POST",
        "/api/v4/runners",
        json_answer(
            400,
            json!({"message": {"tags_list": ["can not be empty when runner is not allowed to pick untagged jobs"]}}),
        ),
    )
    .await;
    let params = RegisterParams {
        run_untagged: false,
        ..RegisterParams::default()
    };
    let err = client
        .register(&Secret::new(REGISTRATION_TOKEN), &params)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    let text = err.to_string();
    assert!(text.starts_with("POST runners: unexpected HTTP status 400:"), "{text}");
    assert!(text.contains("can not be empty when runner is not allowed"), "{text}");
    assert!(!text.contains(REGISTRATION_TOKEN), "{text}");
}

#[tokio::test]
async fn register_410_when_registration_tokens_are_disabled() {
    let (server, client) = setup().await;
    mount(
        &server,
        "POST",
        "/api/v4/runners",
        json_answer(410, json!({"message": "410 Gone - runner registration disallowed"})),
    )
    .await;
    let err = client
        .register(&Secret::new(REGISTRATION_TOKEN), &RegisterParams::default())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(410));
    assert!(err.to_string().contains("runner registration disallowed"), "{err}");
}

#[tokio::test]
async fn register_201_that_is_not_usable_is_an_error() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/api/v4/runners"))
        .respond_with(ResponseTemplate::new(201).set_body_string("201"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v4/runners"))
        .respond_with(json_answer(201, json!({"id": 3})))
        .mount(&server)
        .await;
    let token = Secret::new(REGISTRATION_TOKEN);
    let params = RegisterParams::default();
    assert!(matches!(
        client.register(&token, &params).await,
        Err(GitlabError::NotJson {
            endpoint: "POST runners",
            ..
        })
    ));
    assert!(matches!(
        client.register(&token, &params).await,
        Err(GitlabError::InvalidBody {
            endpoint: "POST runners",
            ..
        })
    ));
}

#[tokio::test]
async fn register_goes_through_the_retry_layer() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/api/v4/runners"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v4/runners"))
        .respond_with(json_answer(
            201,
            json!({"id": 5, "token": LEGACY_TOKEN, "token_expires_at": null}),
        ))
        .mount(&server)
        .await;
    let outcome = client
        .register(&Secret::new(REGISTRATION_TOKEN), &RegisterParams::default())
        .await
        .unwrap();
    let Registration::Registered(credentials) = outcome else {
        panic!("expected a registration");
    };
    assert_eq!(credentials.id, 5);
    assert_eq!(credentials.token_expires_at, None);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// POST /runners/verify

#[tokio::test]
async fn verify_sends_token_system_id_and_info() {
    let (server, client) = setup().await;
    mount(
        &server,
        "POST",
        "/api/v4/runners/verify",
        json_answer(
            200,
            json!({"id": 9, "token": RUNNER_TOKEN, "token_expires_at": "2027-05-01T00:00:00Z"}),
        ),
    )
    .await;
    let token = Secret::new(RUNNER_TOKEN);
    let outcome = client.verify(&token, Some(&system_id())).await.unwrap();
    let Verification::Valid(Some(credentials)) = outcome else {
        panic!("expected a valid token with details, got {outcome:?}");
    };
    assert_eq!(credentials.id, 9);
    assert_eq!(credentials.token, token);
    assert!(credentials.token_expires_at.is_some());

    let req = only_request(&server).await;
    assert_eq!(header(&req, "RUNNER-TOKEN"), Some(RUNNER_TOKEN));
    assert_eq!(header(&req, "Accept"), Some("application/json"));
    assert_eq!(header(&req, "Content-Type"), Some("application/json"));
    let body: Value = req.body_json().unwrap();
    assert_eq!(body["token"], RUNNER_TOKEN);
    assert_eq!(body["system_id"], "s_0123456789ab");
    assert_eq!(body["info"]["executor"], "kubernetes");
    assert_eq!(body["info"]["features"]["cancel_gracefully"], true);
    assert_eq!(body["info"]["features"].as_object().unwrap().len(), 31);
}

#[tokio::test]
async fn verify_without_system_id_omits_it() {
    let (server, client) = setup().await;
    mount(
        &server,
        "POST",
        "/api/v4/runners/verify",
        json_answer(200, json!({"id": 9, "token": RUNNER_TOKEN, "token_expires_at": null})),
    )
    .await;
    client.verify(&Secret::new(RUNNER_TOKEN), None).await.unwrap();
    let body: Value = only_request(&server).await.body_json().unwrap();
    assert!(body.get("system_id").is_none(), "{body}");
}

#[tokio::test]
async fn verify_accepts_a_legacy_plain_200() {
    let (server, client) = setup().await;
    mount(
        &server,
        "POST",
        "/api/v4/runners/verify",
        ResponseTemplate::new(200).set_body_string("200"),
    )
    .await;
    let outcome = client.verify(&Secret::new(LEGACY_TOKEN), None).await.unwrap();
    assert_eq!(outcome, Verification::Valid(None));
}

#[tokio::test]
async fn verify_403_is_an_invalid_token() {
    let (server, client) = setup().await;
    mount(
        &server,
        "POST",
        "/api/v4/runners/verify",
        json_answer(403, json!({"message": "403 Forbidden"})),
    )
    .await;
    let outcome = client
        .verify(&Secret::new(RUNNER_TOKEN), Some(&system_id()))
        .await
        .unwrap();
    assert_eq!(outcome, Verification::Invalid);
}

#[tokio::test]
async fn verify_422_orphaned_runner_is_an_error() {
    let (server, client) = setup().await;
    mount(
        &server,
        "POST",
        "/api/v4/runners/verify",
        json_answer(422, json!({"message": "Runner is orphaned"})),
    )
    .await;
    let err = client
        .verify(&Secret::new(RUNNER_TOKEN), Some(&system_id()))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(422));
    assert!(err.to_string().contains("Runner is orphaned"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// DELETE /runners and DELETE /runners/managers

#[tokio::test]
async fn unregister_deletes_the_runner() {
    let (server, client) = setup().await;
    mount(&server, "DELETE", "/api/v4/runners", ResponseTemplate::new(204)).await;
    let outcome = client.unregister(&Secret::new(LEGACY_TOKEN)).await.unwrap();
    assert_eq!(outcome, Unregistration::Deleted);

    let req = only_request(&server).await;
    assert_eq!(header(&req, "RUNNER-TOKEN"), Some(LEGACY_TOKEN));
    // The official runner sends no Accept where no JSON comes back; reqwest's default `*/*` says
    // the same.
    assert_ne!(header(&req, "Accept"), Some("application/json"));
    assert_eq!(header(&req, "Content-Type"), Some("application/json"));
    let body: Value = req.body_json().unwrap();
    assert_eq!(body, json!({"token": LEGACY_TOKEN}));
}

#[tokio::test]
async fn unregister_403_and_other_statuses() {
    let (server, client) = setup().await;
    Mock::given(method("DELETE"))
        .and(path("/api/v4/runners"))
        .respond_with(json_answer(403, json!({"message": "403 Forbidden"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/api/v4/runners"))
        .respond_with(json_answer(404, json!({"message": "404 Not Found"})))
        .mount(&server)
        .await;
    let token = Secret::new(LEGACY_TOKEN);
    assert_eq!(client.unregister(&token).await.unwrap(), Unregistration::Forbidden);
    let err = client.unregister(&token).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn unregister_manager_deletes_only_this_manager() {
    let (server, client) = setup().await;
    mount(
        &server,
        "DELETE",
        "/api/v4/runners/managers",
        ResponseTemplate::new(204),
    )
    .await;
    let outcome = client
        .unregister_manager(&Secret::new(RUNNER_TOKEN), &system_id())
        .await
        .unwrap();
    assert_eq!(outcome, Unregistration::Deleted);

    let req = only_request(&server).await;
    assert_eq!(header(&req, "RUNNER-TOKEN"), Some(RUNNER_TOKEN));
    assert_ne!(header(&req, "Accept"), Some("application/json"));
    assert_eq!(header(&req, "Content-Type"), Some("application/json"));
    let body: Value = req.body_json().unwrap();
    assert_eq!(body, json!({"token": RUNNER_TOKEN, "system_id": "s_0123456789ab"}));
}

#[tokio::test]
async fn unregister_manager_outcomes() {
    let (server, client) = setup().await;
    for status in [403u16, 404, 400] {
        Mock::given(method("DELETE"))
            .and(path("/api/v4/runners/managers"))
            .respond_with(json_answer(status, json!({"message": format!("{status} answer")})))
            .up_to_n_times(1)
            .mount(&server)
            .await;
    }
    let token = Secret::new(RUNNER_TOKEN);
    // wiremock answers with the first matching mock that still has uses left.
    assert_eq!(
        client.unregister_manager(&token, &system_id()).await.unwrap(),
        Unregistration::Forbidden
    );
    assert_eq!(
        client.unregister_manager(&token, &system_id()).await.unwrap(),
        Unregistration::ManagerNotFound
    );
    let err = client.unregister_manager(&token, &system_id()).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("400 answer"), "{err}");
}

#[tokio::test]
async fn unreachable_gitlab_is_a_transport_error() {
    // A port nobody listens on: bind, note the address, close.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let client = RunnerClient::new(&format!("http://{addr}")).unwrap();
    let err = client.verify(&Secret::new(RUNNER_TOKEN), None).await.unwrap_err();
    assert!(
        matches!(
            err,
            GitlabError::Transport {
                endpoint: "POST runners/verify",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains(RUNNER_TOKEN));
}
