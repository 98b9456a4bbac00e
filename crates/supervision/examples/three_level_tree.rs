//! A three-level supervision tree using all three strategies, printing what happens as
//! children fail.
//!
//! ```text
//! root (one_for_one)
//! ├── cache            worker
//! ├── pipeline (one_for_all)
//! │   ├── reader       worker
//! │   ├── stages (rest_for_one)
//! │   │   ├── parse    worker
//! │   │   ├── enrich   worker
//! │   │   └── store    worker
//! │   └── writer       worker
//! └── metrics          worker
//! ```
//!
//! Run with `cargo run -p supervision --example three_level_tree`
//! (set `RUST_LOG=supervision=info` to see the supervisor reports too).

use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use supervision::{
    ChildKind, ChildSpec, ChildStatus, Strategy, Supervisor, SupervisorFlags, SupervisorRef,
};

struct Worker;

impl Actor for Worker {
    type Msg = ();
    type State = String;
    type Arguments = String;

    async fn pre_start(&self, _: ActorRef<()>, name: String) -> Result<String, ActorProcessingErr> {
        println!("    + {name} started");
        Ok(name)
    }

    async fn post_stop(
        &self,
        _: ActorRef<()>,
        name: &mut String,
    ) -> Result<(), ActorProcessingErr> {
        println!("    - {name} stopped");
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<()>,
        _: (),
        name: &mut String,
    ) -> Result<(), ActorProcessingErr> {
        println!("    ! {name} crashes");
        Err(format!("{name} failed").into())
    }
}

fn worker(id: &'static str) -> ChildSpec {
    ChildSpec::builder(id)
        .start(move |args| async move { args.spawn_linked(None, Worker, id.to_string()).await })
        .build()
        .expect("valid spec")
}

fn flags(strategy: Strategy) -> SupervisorFlags {
    SupervisorFlags::builder()
        .strategy(strategy)
        .intensity(3)
        .period(Duration::from_secs(5))
        .build()
        .expect("valid flags")
}

/// Walks the tree by child ids (`["pipeline", "stages", "enrich"]`) through `which_children`.
async fn find(root: &SupervisorRef, path: &[&str]) -> ActorCell {
    let mut sup = root.clone();
    for (depth, id) in path.iter().enumerate() {
        let children = sup.which_children().await.expect("supervisor answers");
        let cell = children
            .iter()
            .find(|c| c.id.as_str() == *id)
            .and_then(|c| c.cell.clone())
            .expect("child running");
        if depth + 1 == path.len() {
            return cell;
        }
        sup = SupervisorRef::from_cell(cell).expect("a supervisor");
    }
    unreachable!("path is not empty")
}

/// Prints the tree with statuses and generations.
async fn show(sup: &SupervisorRef, indent: usize) {
    for c in sup.which_children().await.expect("supervisor answers") {
        let status = match (c.status, &c.cell) {
            (ChildStatus::Running, Some(cell)) => format!("running as {}", cell.get_id()),
            (ChildStatus::Restarting, _) => "restarting".into(),
            _ => "not running".into(),
        };
        println!(
            "{:indent$}{} (generation {}): {status}",
            "", c.id, c.generation
        );
        if c.kind == ChildKind::Supervisor {
            if let Some(nested) = c.cell.clone().and_then(SupervisorRef::from_cell) {
                Box::pin(show(&nested, indent + 4)).await;
            }
        }
    }
}

async fn crash(root: &SupervisorRef, path: &[&str]) {
    let _ = find(root, path).await.send_message(());
    // Give the supervisors a moment to handle the exit (a demo, not a test).
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let stages = Supervisor::child_spec(
        "stages",
        None,
        flags(Strategy::RestForOne),
        vec![worker("parse"), worker("enrich"), worker("store")],
    )
    .build()
    .expect("valid spec");
    let pipeline = Supervisor::child_spec(
        "pipeline",
        None,
        flags(Strategy::OneForAll),
        vec![worker("reader"), stages, worker("writer")],
    )
    .build()
    .expect("valid spec");

    println!("== starting the tree (each child starts after the one before it, depth first)");
    let root = Supervisor::start(
        Some("three_level_root".into()),
        flags(Strategy::OneForOne),
        vec![worker("cache"), pipeline, worker("metrics")],
    )
    .await
    .expect("tree starts");
    show(&root, 4).await;

    println!("\n== cache crashes: root is one_for_one, only cache restarts");
    crash(&root, &["cache"]).await;

    println!(
        "\n== enrich crashes: stages is rest_for_one: store stops, then enrich and store start"
    );
    crash(&root, &["pipeline", "stages", "enrich"]).await;

    println!(
        "\n== writer crashes: pipeline is one_for_all: everything in it stops in reverse order, then starts in order"
    );
    crash(&root, &["pipeline", "writer"]).await;

    println!("\n== the tree now");
    show(&root, 4).await;
    let snapshot = root.inspect().await.expect("root answers");
    println!("\n== root's restart log: {:?}", snapshot.restart_log);

    println!("\n== stopping root: children stop in reverse start order, each subtree first");
    root.stop().await;
    println!("== done");
}
