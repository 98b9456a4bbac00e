//! `GET /`: a small status page, rendered on the server (no front-end build step), that
//! refreshes itself: the sessions with their state, owner node, turns, cost and last activity.

use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::Html;

use crate::app::AppState;

/// Seconds between the page's refreshes.
const REFRESH_SECONDS: u32 = 5;

pub(crate) async fn status_page(State(state): State<Arc<AppState>>) -> Html<String> {
    let tree = &state.tree;
    let node = tree.node_id().map(str::to_owned);
    let mut rows = String::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let sessions = tree.list_sessions();
    for s in &sessions {
        let cost = tree
            .session(&s.name)
            .map(|h| h.totals().cost_usd)
            .unwrap_or(0.0);
        let idle = Duration::from_millis(now.saturating_sub(s.last_activity_ms) / 1000 * 1000);
        let state = serde_json::to_value(s.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Row {
            name: &s.name,
            state: &state,
            owner: node.as_deref().unwrap_or("this server"),
            figures: Some((s.turns, cost, idle)),
            reason: s.reason.as_deref().unwrap_or(""),
        }
        .render(&mut rows);
    }
    // In a fleet: the sessions other nodes run, from the store's leases.
    if node.is_some()
        && let Ok(fleet) = tree.fleet_sessions().await
    {
        for f in fleet
            .iter()
            .filter(|f| !sessions.iter().any(|s| s.name == f.name))
        {
            Row {
                name: &f.name,
                state: if f.expired { "orphaned" } else { "elsewhere" },
                owner: &f.owner,
                figures: None,
                reason: "",
            }
            .render(&mut rows);
        }
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=\"7\" class=\"empty\">no sessions</td></tr>\n");
    }
    let title = escape(&state.config.supervisor.name);
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>{title} — sessions</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: .3em .8em; border-bottom: 1px solid #ddd; text-align: left; }}
.state-running {{ color: #17813b; }} .state-failed {{ color: #b3261e; }}
.state-restarting, .state-starting {{ color: #9a6700; }} .state-hibernated {{ color: #666; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p id="summary">{count} session(s){node_text} · refreshes every {REFRESH_SECONDS} s</p>
<table id="sessions">
<thead><tr><th>name</th><th>state</th><th>owner</th><th>turns</th><th>cost</th><th>last activity</th><th>reason</th></tr></thead>
<tbody>
{rows}</tbody>
</table>
</body>
</html>
"#,
        count = sessions.len(),
        node_text = node
            .as_deref()
            .map(|n| format!(" on node {}", escape(n)))
            .unwrap_or_default(),
    ))
}

/// One session's row of the table; every text in it is escaped.
struct Row<'a> {
    name: &'a str,
    state: &'a str,
    owner: &'a str,
    /// Turns, cost and time since the last activity (for the sessions this server runs).
    figures: Option<(u64, f64, Duration)>,
    reason: &'a str,
}

impl Row<'_> {
    fn render(&self, out: &mut String) {
        let (name, state) = (escape(self.name), escape(self.state));
        let (turns, cost, activity) = match self.figures {
            Some((turns, cost, idle)) => (
                turns.to_string(),
                format!("${cost:.4}"),
                format!("{} ago", humantime::format_duration(idle)),
            ),
            None => Default::default(),
        };
        let _ = writeln!(
            out,
            "<tr data-session=\"{name}\"><td class=\"name\">{name}</td><td class=\"state state-{state}\">{state}</td>\
             <td class=\"owner\">{owner}</td><td class=\"turns\">{turns}</td><td class=\"cost\">{cost}</td>\
             <td class=\"activity\">{activity}</td><td class=\"reason\">{reason}</td></tr>",
            owner = escape(self.owner),
            reason = escape(self.reason),
        );
    }
}

/// HTML-escapes text.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Row;

    #[test]
    fn a_row_holds_its_texts_as_text_never_markup() {
        let mut out = String::new();
        Row {
            name: "agent-1",
            state: "failed",
            owner: "node \"a\"",
            figures: Some((3, 0.0125, Duration::from_secs(65))),
            reason: "exit 3: <script>alert('x')</script> & more",
        }
        .render(&mut out);
        assert_eq!(
            out,
            "<tr data-session=\"agent-1\"><td class=\"name\">agent-1</td>\
             <td class=\"state state-failed\">failed</td><td class=\"owner\">node &quot;a&quot;</td>\
             <td class=\"turns\">3</td><td class=\"cost\">$0.0125</td>\
             <td class=\"activity\">1m 5s ago</td>\
             <td class=\"reason\">exit 3: &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more</td></tr>\n"
        );
        // A session another node runs: no figures, and still escaped.
        let mut out = String::new();
        Row {
            name: "b",
            state: "elsewhere",
            owner: "<node>",
            figures: None,
            reason: "",
        }
        .render(&mut out);
        assert!(
            out.contains("<td class=\"owner\">&lt;node&gt;</td><td class=\"turns\"></td>"),
            "{out}"
        );
        assert!(!out.contains("<node>"), "{out}");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            super::escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
