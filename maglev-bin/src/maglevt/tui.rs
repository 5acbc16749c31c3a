//! maglevt's screen (ratatui over crossterm): a header with the host's
//! FQDN, one two-line row per VIP (counts, last status, rolling OK % and
//! latency percentiles; a sparkline of the latest probes and the tally of
//! who answered, recent answers bright and drained ones dim), and the error
//! panel, which fills the rest of the screen.
//!
//! The terminal is put back (raw mode off, main screen, cursor shown) on
//! every way out: `q`, Esc or Ctrl-C, SIGTERM, SIGHUP, SIGINT, the end of a
//! `--count`, an error, or a panic (the guard's `Drop` runs as the stack
//! unwinds). [`draw`] is pure over a [`View`], so it is tested on ratatui's
//! `TestBackend`.

use std::io::{self, Stdout, Write};
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute, terminal};
use ratatui::Frame;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use super::session::{Session, Snapshot, VipSnapshot};
use super::stats::{AnomalyKind, Sample};
use crate::cli::render::time_of_day;

/// How often the screen is redrawn.
pub const REFRESH: Duration = Duration::from_millis(250);

/// Sparkline characters, lowest first.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Columns of the sparkline.
const SPARK_WIDTH: usize = 30;

/// What the screen shows besides the snapshot.
#[derive(Debug, Clone)]
pub struct View {
    /// The host's FQDN.
    pub host: String,
    /// A one-line description of the probing (`every 100ms ±10%, timeout
    /// 1s, new connection per probe, tallying x-served-by`).
    pub settings: String,
    /// The numbers.
    pub snapshot: Snapshot,
}

/// Puts the terminal back when dropped.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        restore();
    }
}

fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
}

/// Runs the screen until a quit key, `stop`, or the session's end; then stops the session. The terminal is restored on every way out.
pub async fn run(
    session: &Session,
    host: &str,
    settings: &str,
    stop: &CancellationToken,
) -> io::Result<()> {
    terminal::enable_raw_mode()?;
    let _restore = Restore;
    // Cleared by hand: ratatui's `clear` asks the terminal where its
    // cursor is, which a terminal that does not answer (a serial console,
    // a test's pty) turns into an error.
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        cursor::Hide,
        terminal::Clear(terminal::ClearType::All)
    )?;
    let mut term = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    let result = screen(&mut term, session, host, settings, stop).await;
    session.stop().await;
    result
}

async fn screen(
    term: &mut Terminal<CrosstermBackend<Stdout>>,
    session: &Session,
    host: &str,
    settings: &str,
    stop: &CancellationToken,
) -> io::Result<()> {
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return Ok(()),
            _ = session.finished() => return Ok(()),
            e = events.next() => match e {
                None => return Ok(()),
                Some(Err(e)) => return Err(e),
                Some(Ok(Event::Key(k))) if quits(&k) => return Ok(()),
                Some(Ok(Event::Resize(..))) => { term.autoresize()?; }
                Some(Ok(_)) => continue,
            },
        }
        let view = View {
            host: host.to_owned(),
            settings: settings.to_owned(),
            snapshot: session.snapshot(usize::from(term.size()?.height)),
        };
        term.draw(|f| draw(f, &view))?;
        io::stdout().flush()?;
    }
}

/// `q`, Esc or Ctrl-C.
fn quits(k: &KeyEvent) -> bool {
    k.kind != KeyEventKind::Release
        && (matches!(k.code, KeyCode::Char('q' | 'Q') | KeyCode::Esc)
            || (k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL)))
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame<'_>, view: &View) {
    let area = f.area();
    let s = &view.snapshot;
    let table_height = (2 * s.vips.len() as u16 + 3).min(area.height.saturating_sub(5).max(3));
    let skipped = (s.skipped.len() as u16).min(3);
    let [top, table, errors, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(table_height),
        Constraint::Min(3),
        Constraint::Length(skipped),
    ])
    .areas(area);
    f.render_widget(header(view), top);
    f.render_widget(vip_panel(s), table);
    f.render_widget(error_panel(s, errors), errors);
    if skipped > 0 {
        let lines: Vec<Line> = s
            .skipped
            .iter()
            .map(|k| {
                Line::styled(
                    format!(
                        " not probed: {} ({} {}/{}): {}",
                        k.name, k.address, k.protocol, k.port, k.reason
                    ),
                    Style::new().fg(Color::DarkGray),
                )
            })
            .collect();
        f.render_widget(Paragraph::new(lines), bottom);
    }
}

fn header(view: &View) -> Paragraph<'_> {
    let up = view.snapshot.elapsed.as_secs();
    Paragraph::new(Line::from(vec![
        Span::styled(
            " maglevt ",
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        Span::raw(" "),
        Span::styled(view.host.clone(), Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            "  {} VIPs  {}  up {:02}:{:02}:{:02}  ",
            view.snapshot.vips.len(),
            view.settings,
            up / 3600,
            up / 60 % 60,
            up % 60
        )),
        Span::styled("q quits", Style::new().fg(Color::DarkGray)),
    ]))
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
        None => "-".to_owned(),
    }
}

/// The VIP rows' columns: name, address, probe, N, FAIL, LAST, OK%, and
/// the four latencies.
const COLUMNS: [(&str, usize); 11] = [
    ("VIP", 14),
    ("ADDRESS", 26),
    ("PROBE", 6),
    ("N", 8),
    ("FAIL", 6),
    ("LAST", 8),
    ("OK%", 6),
    ("p50", 7),
    ("p95", 7),
    ("p99", 7),
    ("max", 7),
];

/// `text` left-aligned (the first three columns) or right-aligned in
/// column `i`, with a space after.
fn column(i: usize, text: &str) -> String {
    let w = COLUMNS[i].1;
    let text: String = text.chars().take(w).collect();
    if i < 3 {
        format!("{text:<w$} ")
    } else {
        format!("{text:>w$} ")
    }
}

/// Rows are lines of their own (not a `Table`), so a VIP's second line,
/// the sparkline and tally, runs across the columns.
fn vip_panel(s: &Snapshot) -> Paragraph<'_> {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let head: String = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (h, _))| column(i, h))
        .collect();
    let mut lines = vec![Line::styled(head, bold)];
    for v in &s.vips {
        lines.extend(vip_lines(v));
    }
    Paragraph::new(lines).block(
        Block::new()
            .borders(Borders::ALL)
            .title(" VIPs (latency in ms, last 10 s) "),
    )
}

fn vip_lines(v: &VipSnapshot) -> [Line<'_>; 2] {
    let st = &v.stats;
    let addr = match v.address {
        std::net::IpAddr::V4(a) => format!("{a}:{}", v.port),
        std::net::IpAddr::V6(a) => format!("[{a}]:{}", v.port),
    };
    let red_if = |bad: bool| {
        if bad {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        }
    };
    let last_ok = st
        .last
        .as_deref()
        .is_some_and(|l| l == "open" || l.parse::<u16>().is_ok_and(|c| (200..400).contains(&c)));
    let last_style = if last_ok {
        Style::new().fg(Color::Green)
    } else {
        red_if(st.last.is_some())
    };
    let ok_pct = st.window.ok_pct;
    let first = Line::from(vec![
        Span::styled(
            column(0, &v.name),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(column(1, &addr)),
        Span::raw(column(2, v.probe.as_str())),
        Span::raw(column(3, &st.n.to_string())),
        Span::styled(column(4, &st.fail.to_string()), red_if(st.fail > 0)),
        Span::styled(column(5, st.last.as_deref().unwrap_or("-")), last_style),
        Span::styled(
            column(6, &ok_pct.map_or("-".to_owned(), |p| format!("{p:.1}"))),
            red_if(ok_pct.is_some_and(|p| p < 100.0)),
        ),
        Span::raw(column(7, &ms(st.window.p50_ms))),
        Span::raw(column(8, &ms(st.window.p95_ms))),
        Span::raw(column(9, &ms(st.window.p99_ms))),
        Span::raw(column(10, &ms(st.window.max_ms))),
    ]);
    let mut second = vec![Span::raw(" ".repeat(2)), spark(&st.spark), Span::raw("  ")];
    for t in &st.tally {
        let style = if t.recent {
            Style::new().fg(Color::White).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::DarkGray)
        };
        second.push(Span::styled(format!("{} {}", t.value, t.count), style));
        second.push(Span::raw("  "));
    }
    [first, Line::from(second)]
}

/// The latest probes as bars scaled to the slowest shown; a failure is a
/// red `×`.
fn spark(samples: &[Sample]) -> Span<'static> {
    let shown = &samples[samples.len().saturating_sub(SPARK_WIDTH)..];
    let top = shown
        .iter()
        .filter_map(|s| match s {
            Sample::Ok(us) => Some(*us),
            Sample::Fail => None,
        })
        .max()
        .unwrap_or(1)
        .max(1);
    let any_fail = shown.contains(&Sample::Fail);
    let text: String = shown
        .iter()
        .map(|s| match s {
            Sample::Ok(us) => BARS[((us * (BARS.len() as u64 - 1)) / top) as usize],
            Sample::Fail => '×',
        })
        .collect();
    let text = format!("{text:<SPARK_WIDTH$}");
    Span::styled(
        text,
        Style::new().fg(if any_fail { Color::Red } else { Color::Cyan }),
    )
}

fn error_panel(s: &Snapshot, area: Rect) -> Paragraph<'_> {
    let counts: Vec<String> = AnomalyKind::ALL
        .iter()
        .map(|k| format!("{} {}", k.as_str(), s.error_counts.get(*k)))
        .collect();
    let room = usize::from(area.height.saturating_sub(2));
    let lines: Vec<Line> = s
        .errors
        .iter()
        .take(room)
        .map(|e| {
            let color = match e.kind {
                AnomalyKind::Spike => Color::Yellow,
                _ => Color::Red,
            };
            Line::from(vec![
                Span::styled(time_of_day(e.unix_nanos), Style::new().fg(Color::DarkGray)),
                Span::raw("  "),
                Span::raw(format!("{:<14}", e.vip)),
                Span::styled(format!("{:<9}", e.kind.as_str()), Style::new().fg(color)),
                Span::raw(e.detail.clone()),
            ])
        })
        .collect();
    Paragraph::new(lines).block(
        Block::new()
            .borders(Borders::ALL)
            .title(format!(" errors: {} ", counts.join(" · "))),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ratatui::backend::TestBackend;

    use super::*;
    use crate::maglevt::probe::{Outcome, Status};
    use crate::maglevt::session::ErrorEntry;
    use crate::maglevt::stats::{AnomalyCounts, VipStats};
    use crate::maglevt::targets::VipProbe;

    fn view() -> View {
        let mut st = VipStats::new();
        let at = Duration::from_millis;
        for i in 0..10 {
            st.record(
                at(i * 100),
                &Outcome {
                    latency: Duration::from_micros(300 + i * 10),
                    status: Status::Http(200),
                    header: Some("web1".into()),
                },
            );
        }
        st.record(
            at(6_500),
            &Outcome {
                latency: Duration::from_micros(400),
                status: Status::Http(200),
                header: Some("web3".into()),
            },
        );
        let mut counts = AnomalyCounts::default();
        counts.add(AnomalyKind::Timeout);
        View {
            host: "lb0.example.org".into(),
            settings: "every 100ms ±10%".into(),
            snapshot: Snapshot {
                elapsed: at(7_000),
                unix_nanos: 0,
                vips: vec![VipSnapshot {
                    name: "web".into(),
                    names: vec!["web".into()],
                    address: "127.0.1.10".parse().unwrap(),
                    port: 18080,
                    protocol: "tcp",
                    probe: VipProbe::Http,
                    stats: st.summary(at(7_000)),
                }],
                skipped: vec![],
                errors: vec![ErrorEntry {
                    unix_nanos: 3_723_000_000_000,
                    vip: "web".into(),
                    kind: AnomalyKind::Timeout,
                    detail: "no answer in 1000.000 ms".into(),
                }],
                error_counts: counts,
            },
        }
    }

    fn screen(width: u16, height: u16) -> (Vec<String>, ratatui::buffer::Buffer) {
        let mut t = Terminal::new(TestBackend::new(width, height)).unwrap();
        let v = view();
        t.draw(|f| draw(f, &v)).unwrap();
        let buf = t.backend().buffer().clone();
        let lines = (0..height)
            .map(|y| (0..width).map(|x| buf[(x, y)].symbol()).collect::<String>())
            .collect();
        (lines, buf)
    }

    #[test]
    fn the_screen_shows_the_host_the_vip_its_tally_and_the_errors() {
        let (lines, buf) = screen(120, 16);
        let all = lines.join("\n");
        assert!(lines[0].contains("lb0.example.org"), "{all}");
        assert!(lines[0].contains("q quits"), "{all}");
        let row = lines
            .iter()
            .position(|l| l.contains("127.0.1.10:18080"))
            .expect(&all);
        assert!(
            lines[row].contains("web") && lines[row].contains(" 11 "),
            "{all}"
        );
        let tally = &lines[row + 1];
        assert!(
            tally.contains("web1 10") && tally.contains("web3 1"),
            "{all}"
        );
        assert!(
            all.contains("timeout 1 · http-err 0 · net-err 0 · spike 0"),
            "{all}"
        );
        assert!(
            all.contains("01:02:03.000  web") && all.contains("no answer"),
            "{all}"
        );
        // web1 last answered 6 s ago: dim; web3 0.5 s ago: bright.
        let x = |needle: &str| {
            tally
                .find(needle)
                .map(|b| tally[..b].chars().count() as u16)
        };
        let y = row as u16 + 1;
        assert_eq!(buf[(x("web1").unwrap(), y)].fg, Color::DarkGray);
        assert_eq!(buf[(x("web3").unwrap(), y)].fg, Color::White);
    }

    #[test]
    fn a_small_screen_still_draws() {
        for (w, h) in [(20, 4), (80, 8), (1, 1)] {
            let (lines, _) = screen(w, h);
            assert_eq!(lines.len(), usize::from(h));
        }
    }
}
