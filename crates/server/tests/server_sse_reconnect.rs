//! A turn's server-sent events survive the client: a slow turn (20 pieces, 50 ms apart, each a
//! `stream_event` with `include_partial_messages`) is read in part, the connection dropped, and
//! `GET …/turns/{turn}/events` with `Last-Event-ID` goes on at the next seq with nothing missed
//! or repeated; re-POSTing the query with `Last-Event-ID` attaches to the running turn (the CLI
//! gets the prompt once); and a turn whose client went away still runs to its end.

#[path = "support/common.rs"]
mod support;

use std::time::Duration;

use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::{Scenario, Turn};
use serde_json::Value;
use support::{
    SseEvent, SseReader, base, fake_config, id_parts, post_query, query_sse, start, turn_events,
};

const PIECES: usize = 20;
const REPLY: &str = "a long answer streamed in twenty small pieces, one after the other";

/// A server whose session `agent` answers every turn slowly, with a stream event per piece.
async fn slow_server(env: &FakeEnv) -> claude_supervisor_server::RunningServer {
    let scenario = Scenario::new().default_turn(Turn::text(REPLY).slow(PIECES, 50));
    let mut config = fake_config(env, &[("agent", &scenario)]);
    config.sessions[0].include_partial_messages = true;
    start(config).await
}

/// Reads `n` events (each within a bound).
async fn read_some(reader: &mut SseReader, n: usize) -> Vec<SseEvent> {
    let mut got = Vec::new();
    for _ in 0..n {
        let event = tokio::time::timeout(Duration::from_secs(10), reader.next())
            .await
            .expect("an event within 10 s")
            .expect("the turn has more events");
        got.push(event);
    }
    got
}

/// The rest of a stream (bounded).
async fn rest(reader: SseReader) -> Vec<SseEvent> {
    tokio::time::timeout(Duration::from_secs(30), reader.collect())
        .await
        .expect("the stream ends within 30 s")
}

/// Seqs `from..from+n` in order, all of turn `turn`; the last event is `done` with the whole
/// reply.
fn assert_continues(events: &[SseEvent], turn: &str, from: usize) {
    for (i, e) in events.iter().enumerate() {
        let (t, seq) = id_parts(e);
        assert_eq!(t, turn, "{e:?}");
        assert_eq!(seq, from + i, "no event missing or repeated: {events:#?}");
    }
    let last = events.last().expect("events after the reconnect");
    assert_eq!(last.event, "done", "{events:#?}");
    assert_eq!(last.json()["text"], REPLY);
    assert_eq!(last.json()["is_error"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_resumes_after_last_event_id_with_nothing_missed_or_repeated() {
    let env = FakeEnv::new();
    let server = slow_server(&env).await;
    let url = base(&server);

    let mut first = query_sse(&url, "agent", "tell me a long story").await;
    let seen = read_some(&mut first, 5).await;
    drop(first); // the connection goes away mid-turn
    let (turn, last_seq) = id_parts(seen.last().unwrap());
    let last_id = seen.last().unwrap().id.clone().unwrap();

    let after = rest(turn_events(&url, "agent", &turn, Some(&last_id)).await).await;
    assert_continues(&after, &turn, last_seq + 1);
    let deltas = after.iter().filter(|e| e.event == "stream_event").count();
    assert!(
        deltas >= PIECES / 2,
        "most pieces streamed after the reconnect: {deltas}"
    );

    // What the two connections got together is the whole turn, as a full replay shows it.
    let full = rest(turn_events(&url, "agent", &turn, None).await).await;
    let joined: Vec<(Option<String>, String, String)> = seen
        .iter()
        .chain(&after)
        .map(|e| (e.id.clone(), e.event.clone(), e.data.clone()))
        .collect();
    let replay: Vec<(Option<String>, String, String)> = full
        .iter()
        .map(|e| (e.id.clone(), e.event.clone(), e.data.clone()))
        .collect();
    assert_eq!(joined, replay);

    // An id of another turn (or garbage) replays from the start; a turn that is not the
    // session's latest is 404.
    let replayed = rest(turn_events(&url, "agent", &turn, Some("999999:3")).await).await;
    assert_eq!(replayed.len(), full.len());
    let missing = reqwest::Client::new()
        .get(format!("{url}/sessions/agent/turns/999999/events"))
        .send()
        .await
        .unwrap();
    support::expect_error(missing, 404, "no_turn").await;

    assert_eq!(env.prompts_received(), ["tell me a long story"]);
    server.shutdown().await.unwrap();
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_posting_with_last_event_id_attaches_to_the_running_turn() {
    let env = FakeEnv::new();
    let server = slow_server(&env).await;
    let url = base(&server);
    let http = reqwest::Client::new();

    let mut first = SseReader::new(post_query(&http, &url, "agent", "once only", None).await);
    let seen = read_some(&mut first, 4).await;
    drop(first);
    let (turn, last_seq) = id_parts(seen.last().unwrap());
    let last_id = seen.last().unwrap().id.clone().unwrap();

    // The client retries the same POST with the id it last saw: it gets the same turn's rest.
    let again = post_query(&http, &url, "agent", "once only", Some(&last_id)).await;
    let after = rest(SseReader::new(again)).await;
    assert_continues(&after, &turn, last_seq + 1);

    assert_eq!(
        env.prompts_received(),
        ["once only"],
        "no second turn ran for the retry"
    );
    let info: Value = http
        .get(format!("{url}/sessions/agent"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["turns"], 1, "{info}");
    server.shutdown().await.unwrap();
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_whose_client_went_away_runs_to_its_end() {
    let env = FakeEnv::new();
    let server = slow_server(&env).await;
    let url = base(&server);
    let http = reqwest::Client::new();

    let mut first = query_sse(&url, "agent", "finish without me").await;
    let seen = read_some(&mut first, 2).await;
    drop(first);
    let (turn, _) = id_parts(&seen[0]);

    // Nobody reads the turn now; it goes on anyway. Wait (bounded) until the session has
    // finished it, then reconnect.
    let finished = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let info: Value = http
                .get(format!("{url}/sessions/agent"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if info["turns"] == 1 && info["busy"] == false {
                return info;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the turn finishes within 30 s with no client");
    assert_eq!(finished["state"], "running", "{finished}");

    let last_id = seen.last().unwrap().id.clone().unwrap();
    let after = rest(turn_events(&url, "agent", &turn, Some(&last_id)).await).await;
    assert_continues(&after, &turn, id_parts(seen.last().unwrap()).1 + 1);
    assert!(
        after.iter().any(|e| e.event == "result"),
        "the CLI's result is there: {after:#?}"
    );
    assert!(
        !after.iter().any(|e| e.event == "error"),
        "not cut: {after:#?}"
    );

    // The session is still whole: the next turn runs on the same conversation.
    let next = rest(query_sse(&url, "agent", "and then?").await).await;
    assert_eq!(next.last().map(|e| e.event.as_str()), Some("done"));
    assert_eq!(env.prompts_received(), ["finish without me", "and then?"]);
    server.shutdown().await.unwrap();
    env.assert_all_gone().await;
}
