//! The credential gateway streams: with partial messages on, a caller gets the same frames
//! (types and count) from the same slow reply with and without the gateway, and the deltas
//! arrive spread over the reply's time, not all at its end.

use std::time::{Duration, Instant};

use claude_supervisor::{ClaudeSupervisor, Credential, GatewayConfig, Message, SessionSpec};
use claude_testing::envs::RealEnv;
use claude_testing::fake_api::Reply;
use futures::StreamExt;

const PIECES: usize = 8;
const DELAY: Duration = Duration::from_millis(250);

/// A frame's kind: its type, and for stream events the SSE event's type.
fn kind(message: &Message) -> String {
    match message {
        Message::StreamEvent(e) => {
            format!("stream_event:{}", e.event_type().unwrap_or("?"))
        }
        other => other.type_name().to_owned(),
    }
}

/// Runs the slow reply through a tree (with or without a gateway); returns the frames' kinds
/// and when each text delta arrived.
async fn frames(env: &RealEnv, gateway: bool) -> (Vec<String>, Vec<Instant>) {
    let mut builder = ClaudeSupervisor::builder().cli_path(env.cli_path());
    if gateway {
        builder = builder.gateway(GatewayConfig::new(
            env.api.base_url(),
            Credential::ApiKey("sk-ant-gateway-test-REAL".into()),
        ));
    }
    let options = env
        .options()
        .include_partial_messages(true)
        .build()
        .unwrap();
    let tree = builder
        .session(SessionSpec::new("streamer", options))
        .start()
        .await
        .unwrap();
    let handle = tree.session("streamer").unwrap();
    env.api.push_reply(Reply::slow(
        "one two three four five six seven eight",
        PIECES,
        DELAY,
    ));
    let mut turn = handle.query("stream to me").await.unwrap();
    let (mut kinds, mut deltas) = (Vec::new(), Vec::new());
    while let Some(message) = turn.next().await {
        let message = message.unwrap();
        let k = kind(&message);
        if k == "stream_event:content_block_delta" {
            deltas.push(Instant::now());
        }
        kinds.push(k);
    }
    tree.shutdown().await;
    (kinds, deltas)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reply_reaches_the_caller_frame_for_frame_through_the_gateway() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let (direct, _) = frames(&env, false).await;
    let before = env.api.requests().len();
    let (through, deltas) = frames(&env, true).await;
    assert!(
        env.api.requests()[before..]
            .iter()
            .all(|r| r.header("x-api-key") == Some("sk-ant-gateway-test-REAL")),
        "the second run went through the gateway"
    );
    assert_eq!(
        through, direct,
        "the same frames with and without the gateway"
    );
    assert_eq!(deltas.len(), PIECES, "{through:?}");
    // Unbuffered: the first delta arrives while the upstream is still sending (a gateway that
    // buffered the response would deliver every delta at once, at the end).
    let spread = *deltas.last().unwrap() - deltas[0];
    assert!(
        spread >= DELAY * (PIECES as u32 - 1) / 2,
        "the deltas arrived within {spread:?}"
    );
}
