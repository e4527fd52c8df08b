//! The control plane answers the machine's own tools, never a web page:
//! cross-site requests and DNS-rebinding Host names are refused, and an
//! IPv4 client of a dual-stack listener counts as loopback.

mod common;

use common::*;
use proteus_mock::Config;
use proteus_mock::world::World;

async fn faults(base: &str) -> serde_json::Value {
    reqwest::get(format!("{base}/__admin/faults"))
        .await
        .expect("reachable")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn a_cross_site_form_post_cannot_switch_a_fault_on() {
    let mock = start().await;
    let base = mock.url();
    let http = reqwest::Client::new();
    // What a page on another site can send without a preflight.
    let r = http
        .post(format!("{base}/__admin/faults"))
        .header("Origin", "https://evil.example")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(r#"{"fault": "accept-bad-token"}"#)
        .send()
        .await
        .expect("reachable");
    assert_eq!(r.status().as_u16(), 403);
    let body: serde_json::Value = r.json().await.expect("the envelope");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cross-site")),
        "{body}"
    );
    assert_eq!(faults(&base).await["data"], serde_json::json!([]));
    // The mock's own origin (a page it serves, later) is fine.
    let own = http
        .get(format!("{base}/__admin/faults"))
        .header("Origin", base.as_str())
        .send()
        .await
        .expect("reachable");
    assert_eq!(own.status().as_u16(), 200);
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn a_rebound_host_name_cannot_read_the_profile() {
    let mock = start().await;
    let port = mock.addr.port();
    let http = reqwest::Client::new();
    let with_host = |host: String| {
        http.get(format!("{}/__admin/profile", mock.url()))
            .header("Host", host)
            .send()
    };
    let rebound = with_host(format!("evil.example:{port}"))
        .await
        .expect("reachable");
    assert_eq!(rebound.status().as_u16(), 403);
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "localhost".to_string(),
    ] {
        let r = with_host(host.clone()).await.expect("reachable");
        assert_eq!(r.status().as_u16(), 200, "Host: {host}");
    }
    mock.stop().await.expect("stop");
}

#[tokio::test]
async fn an_ipv4_client_of_a_dual_stack_listener_is_loopback() {
    // `--host ::`: IPv4 clients arrive as ::ffff:127.0.0.1.
    let Ok(listener) = tokio::net::TcpListener::bind("[::]:0").await else {
        eprintln!("no IPv6 on this machine: nothing to check");
        return;
    };
    let port = listener.local_addr().expect("addr").port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(proteus_mock::serve(
        listener,
        World::default_world(),
        Config::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let base = format!("http://127.0.0.1:{port}");
    let mut status = 0;
    for _ in 0..50 {
        if let Ok(r) = reqwest::get(format!("{base}/__admin/profile")).await {
            status = r.status().as_u16();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        status, 200,
        "127.0.0.1 through a [::] listener reaches /__admin"
    );
    let _ = stop.send(());
    server.await.expect("joins").expect("serves");
}
