//! Reports a researcher would otherwise make by hand, from a study's results alone (the
//! report never trains): `report.md` and a self-contained `report.html` with SVG figures, and
//! the terminal tables of `lrx show`.
//!
//! ```text
//! report.md              summary, what changed against a compared study (`--compare`), one
//!                        section per phase, final run, correlations, failures
//! report.html            the same, one file: figures inline, sortable tables, no network
//! figures/history.svg           every run's objective in the order runs finished, best so far
//! figures/parallel.svg          parallel coordinates: every run over the swept keys
//! figures/<phase>-loss.svg       train and val loss vs step, every candidate
//! figures/<phase>-loss-tokens.svg, <phase>-loss-time.svg   the same vs tokens and seconds
//! figures/<phase>-dynamics.svg   gradient norm, per-group LRs and aux loss: winner, runner-up
//! figures/<phase>-sweep.svg      the objective vs each numeric swept key
//! figures/<phase>-heatmap.svg    the objective over a grid's two keys
//! figures/<phase>-schedule.svg   each candidate's LR multiplier, when the phase varies it
//! figures/final-loss.svg         the final run against the root baseline
//! ```
//!
//! Entry points: [`write_report`] (with [`Live`] for the page `lrx run --report` keeps
//! current) and [`table::render_tables`].

pub mod analysis;
pub mod compare;
pub mod doc;
pub mod figures;
pub mod format;
pub mod html;
pub mod markdown;
mod sections;
pub mod stats;
pub mod table;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::results::StudyResults;

pub use figures::FigureError;
pub use table::{TableOptions, render_tables};

use doc::{Block, Doc, Figure, Text};

/// What to write.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Also write `report.html`.
    pub html: bool,
    /// Draw figures (`figures/*.svg`).
    pub figures: bool,
    /// The report's title; default `Study <name>`.
    pub title: Option<String>,
    /// The study is still running: the HTML page reloads itself, and both say how far it is.
    pub live: Option<Live>,
    /// Another study (or this one's older version) to compare with: a "Compared with" section.
    pub compare: Option<compare::StudyDiff>,
}

/// How far a running study is, for its live report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Live {
    /// Seconds between the page's reloads.
    pub refresh: u32,
    /// Runs settled so far, of all the study will take.
    pub done: usize,
    pub total: usize,
}

impl Default for ReportOptions {
    fn default() -> ReportOptions {
        ReportOptions { html: true, figures: true, title: None, live: None, compare: None }
    }
}

/// The files a report wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportFiles {
    pub markdown: PathBuf,
    pub html: Option<PathBuf>,
    pub figures: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write `{}`: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Figure(#[from] FigureError),
}

/// A file-name-safe form of a phase name.
fn slug(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if s.is_empty() { "phase".to_owned() } else { s }
}

/// Builds the report document (figures included as SVG text) without writing anything.
pub fn build(results: &StudyResults, opts: &ReportOptions) -> Result<Doc, FigureError> {
    let views = analysis::analyse(results);
    let title = opts.title.clone().unwrap_or_else(|| format!("Study {}", results.study));
    let mut doc = Doc { title, blocks: Vec::new(), refresh: opts.live.map(|l| l.refresh) };
    if let Some(live) = opts.live {
        doc.push(Block::Note(Text::new().strong("Running:").plain(format!(
            " {} of {} runs have finished so far; this page reloads itself every {} s until the study ends.",
            live.done, live.total, live.refresh
        ))));
    }
    if results.interrupted {
        doc.push(Block::Note(
            Text::new()
                .strong("Interrupted:")
                .plain(" ")
                .plain("the study was stopped before it finished; some results are missing."),
        ));
    }
    let compute = analysis::compute(results);
    sections::summary(&mut doc, results, &views, compute);
    if let Some(d) = &opts.compare {
        compare::section(&mut doc, d);
    }
    if opts.figures
        && let Some(h) = figures::history(results)?
    {
        let order = match h.untimed {
            0 => "in the order the runs finished".to_owned(),
            n if n == h.runs => {
                "in listed order (phase by phase, candidates as listed): no run has a recorded finish time".to_owned()
            }
            n => format!(
                "in the order the runs finished ({n} of {} have no recorded finish time and follow the run listed before them)",
                h.runs
            ),
        };
        doc.push(Block::Figure(Figure {
            path: "figures/history.svg".into(),
            svg: h.svg,
            caption: Text::new().plain(format!(
                "Every run's {} {order}, one colour per phase; the red line is the best so far, ✕ runs without a result.",
                results.metric
            )),
        }));
    }
    let mut used = std::collections::HashSet::new();
    if opts.figures
        && let Some(svg) = figures::parallel(results, &views)?
    {
        doc.push(Block::Figure(Figure {
            path: "figures/parallel.svg".into(),
            svg,
            caption: Text::new().plain(format!(
                "Every run with a result as a line through its values of the swept keys and its {} (right), darker where the {} is better.",
                results.metric, results.metric
            )),
        }));
    }
    for v in &views {
        sections::phase(&mut doc, v);
        if !opts.figures {
            continue;
        }
        let mut stem = slug(&v.phase.name);
        while !used.insert(stem.clone()) {
            stem.push('_');
        }
        let colors = figures::phase_palette(v);
        let mut add = |kind: &str, svg: Option<String>, caption: Text| {
            if let Some(svg) = svg {
                doc.push(Block::Figure(Figure { path: format!("figures/{stem}-{kind}.svg"), svg, caption }));
            }
        };
        let name = Text::new().code(&v.phase.name);
        add(
            "loss",
            figures::loss_curves(v, &colors)?,
            Text::new().plain("Phase ").code(&v.phase.name).plain(": train loss (thin) and val loss (thick, dots at evaluations) against step. The baseline is black, the winner thickest; diverged runs are dashed and cut at the ✕."),
        );
        add(
            "loss-tokens",
            figures::loss_vs_tokens(v, &colors)?,
            name.clone().plain(": the same losses against the tokens each run had seen."),
        );
        add(
            "loss-time",
            figures::loss_vs_time(v, &colors)?,
            name.clone().plain(
                ": the same losses against wall-clock seconds since each run started (this machine's speed and load).",
            ),
        );
        if let Some(d) = figures::dynamics(v)? {
            let label = |i: usize| v.phase.candidates[i].variant.as_str();
            let mut caption = name.clone().plain(": how the winner ").code(label(d.winner)).plain(" (solid)");
            if let Some(r) = d.runner_up {
                caption = caption.plain(" and the runner-up ").code(label(r)).plain(" (dashed)");
            }
            caption = caption.plain(format!(
                " trained: {} against step, as their histories recorded {}",
                d.drawn.join(", "),
                if d.averaged { "them (repeats averaged)" } else { "them" }
            ));
            if !d.missing.is_empty() {
                caption = caption.plain(format!(
                    "; {} {} not recorded by this trainer, so not drawn",
                    d.missing.join(" and "),
                    if d.missing.len() == 1 { "was" } else { "were" }
                ));
            }
            add("dynamics", Some(d.svg), caption.plain("."));
        }
        add(
            "sweep",
            figures::sweep(v, &colors)?,
            name.clone().plain(": the objective against the swept value; the dashed line is the baseline, the large dot the winner, ✕ runs without a result; bars are ± one std over repeats."),
        );
        add(
            "range-test",
            figures::range_test(v)?,
            name.clone().plain(": the range test's training loss (thin) and its centred moving average (thick) against the learning rate; the red dot is the lowest smoothed loss, the dashed line the pick."),
        );
        add(
            "heatmap",
            figures::heatmap(v)?,
            name.clone().plain(": the objective over the grid, green best; the framed cell is the winner."),
        );
        if v.varies_schedule {
            add(
                "schedule",
                figures::phase_schedules(v, &colors)?,
                name.clone().plain(": each candidate's LR multiplier over its run."),
            );
        }
    }
    sections::final_run(&mut doc, results, &views);
    if opts.figures
        && let Some(f) = &results.final_run
        && let Some(svg) = figures::final_curves(analysis::root_baseline(&views).map(|(_, b)| b), f)?
    {
        doc.push(Block::Figure(Figure {
            path: "figures/final-loss.svg".into(),
            svg,
            caption: Text::new()
                .plain("The final run (blue) against the root baseline (black): train loss thin, val loss thick."),
        }));
    }
    sections::insights(&mut doc, results);
    let corr: Vec<_> = views.iter().flat_map(analysis::correlations).collect();
    sections::correlations(&mut doc, &corr);
    sections::failures(&mut doc, &analysis::failures(results), compute.missing);
    Ok(doc)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    // Unique per process and call, so two reports written at once never share a temporary.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let err = |source| ReportError::Write { path: path.to_owned(), source };
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
    fs::write(&tmp, bytes).map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

/// Writes `report.md`, `report.html` and `figures/*.svg` into `out` (created if needed).
pub fn write_report(results: &StudyResults, out: &Path, opts: &ReportOptions) -> Result<ReportFiles, ReportError> {
    let doc = build(results, opts)?;
    fs::create_dir_all(out).map_err(|source| ReportError::Write { path: out.to_owned(), source })?;
    let mut figures = Vec::new();
    for f in doc.figures() {
        let path = out.join(&f.path);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|source| ReportError::Write { path: dir.to_owned(), source })?;
        }
        write(&path, f.svg.as_bytes())?;
        figures.push(path);
    }
    // Figures of phases the study no longer has (renamed, removed) would outlive them.
    if let Ok(dir) = fs::read_dir(out.join("figures")) {
        for stale in dir.flatten().map(|e| e.path()) {
            if stale.extension().is_some_and(|e| e == "svg") && !figures.contains(&stale) {
                fs::remove_file(&stale).map_err(|source| ReportError::Write { path: stale.clone(), source })?;
            }
        }
    }
    let markdown = out.join("report.md");
    write(&markdown, markdown::render(&doc).as_bytes())?;
    let html = if opts.html {
        let path = out.join("report.html");
        write(&path, html::render(&doc).as_bytes())?;
        Some(path)
    } else {
        None
    };
    Ok(ReportFiles { markdown, html, figures })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::results::{CandidateResult, CandidateStatus, PhaseResult, PhaseStatus, RepeatResult};
    use crate::spec::Goal;
    use crate::spec::{HistoryRow, RunConfig, Status, Value};

    fn repeat(status: Status, history: Vec<HistoryRow>) -> RepeatResult {
        RepeatResult {
            seed: 1,
            key: None,
            cached: false,
            status: Some(status),
            seconds: 1.0,
            tokens_per_sec: 10.0,
            steps: 10,
            diverged_at: (status == Status::Diverged).then_some(5),
            error: (status == Status::Failed).then(|| "boom".to_owned()),
            exit_code: None,
            log_tail: None,
            failure: None,
            stop_at: None,
            resumed_at: None,
            finished_at: None,
            cooldown: None,
            history,
        }
    }

    fn cand(
        variant: &str,
        changes: Vec<(&str, Value)>,
        status: CandidateStatus,
        objective: Option<f64>,
        history: Vec<HistoryRow>,
    ) -> CandidateResult {
        let s = match status {
            CandidateStatus::Diverged => Status::Diverged,
            CandidateStatus::Failed => Status::Failed,
            _ => Status::Ok,
        };
        let mut metrics = BTreeMap::new();
        if let Some(o) = objective {
            metrics.insert("val_loss".to_owned(), o);
        }
        CandidateResult {
            variant: variant.into(),
            changes: changes.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            status,
            objective: objective.filter(|o| o.is_finite()),
            metrics,
            metrics_std: BTreeMap::new(),
            reason: None,
            repeats: vec![repeat(s, history)],
            config: Some(RunConfig::defaults()),
        }
    }

    fn phase(name: &str, candidates: Vec<CandidateResult>, winner: Option<usize>) -> PhaseResult {
        PhaseResult {
            name: name.into(),
            after: Vec::new(),
            status: if winner.is_some() { PhaseStatus::Done } else { PhaseStatus::Failed },
            metric: "val_loss".into(),
            goal: Goal::Minimize,
            winner,
            candidates,
            swept: Vec::new(),
            incoming_key: None,
            message: winner.is_none().then(|| "every candidate failed or diverged".to_owned()),
            found: None,
            range_test: None,
            same_runs: Vec::new(),
        }
    }

    fn study(phases: Vec<PhaseResult>, final_run: Option<CandidateResult>) -> StudyResults {
        StudyResults {
            study: "odd".into(),
            metric: "val_loss".into(),
            goal: Goal::Minimize,
            phases,
            final_run,
            final_status: None,
            interrupted: false,
            train_wall: 0.0,
            superseded: Vec::new(),
        }
    }

    fn rows(loss: &[f64]) -> Vec<HistoryRow> {
        loss.iter()
            .enumerate()
            .map(|(i, l)| HistoryRow {
                step: i as u64 * 10,
                metrics: [("train_loss".to_owned(), *l), ("val_loss".to_owned(), *l)].into(),
            })
            .collect()
    }

    fn check(results: &StudyResults) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        let files = write_report(results, dir.path(), &ReportOptions::default()).unwrap();
        for f in &files.figures {
            roxmltree::Document::parse(&fs::read_to_string(f).unwrap()).unwrap();
        }
        let md = fs::read_to_string(&files.markdown).unwrap();
        let html = fs::read_to_string(files.html.unwrap()).unwrap();
        let _ = table::render_tables(results, &TableOptions::default());
        (md, html)
    }

    #[test]
    fn figures_of_phases_the_study_no_longer_has_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let with = |name: &str| {
            let c = vec![
                cand("baseline", vec![], CandidateStatus::Ok, Some(2.0), rows(&[3.0, 2.0])),
                cand(
                    "matrix_lr=0.1",
                    vec![("matrix_lr", Value::Float(0.1))],
                    CandidateStatus::Ok,
                    Some(2.5),
                    rows(&[3.0, 2.5]),
                ),
            ];
            study(vec![phase(name, c, Some(0))], None)
        };
        write_report(&with("old"), dir.path(), &ReportOptions::default()).unwrap();
        assert!(dir.path().join("figures/old-loss.svg").is_file());
        std::fs::write(dir.path().join("figures/notes.txt"), "mine").unwrap();
        let files = write_report(&with("new"), dir.path(), &ReportOptions::default()).unwrap();
        assert!(!dir.path().join("figures/old-loss.svg").exists(), "the renamed phase's figure is gone");
        assert!(files.figures.iter().all(|f| f.is_file()) && dir.path().join("figures/notes.txt").is_file());
    }

    #[test]
    fn an_empty_study_still_reports() {
        let (md, html) = check(&study(Vec::new(), None));
        assert!(md.contains("## Summary") && md.contains("0 phases"));
        assert!(html.contains("</html>"));
        assert_eq!(table::render_tables(&study(Vec::new(), None), &TableOptions::default()), "study odd: no phases\n");
    }

    #[test]
    fn a_phase_without_candidates_says_so() {
        let (md, _) = check(&study(vec![phase("empty", Vec::new(), None)], None));
        assert!(md.contains("No candidates."));
    }

    #[test]
    fn an_all_failed_phase_lists_every_failure() {
        let c = vec![
            cand("baseline", vec![], CandidateStatus::Failed, None, Vec::new()),
            cand(
                "matrix_lr=0.1",
                vec![("matrix_lr", Value::Float(0.1))],
                CandidateStatus::Diverged,
                None,
                rows(&[5.0, f64::NAN]),
            ),
        ];
        let (md, _) = check(&study(vec![phase("bad", c, None)], None));
        assert!(md.contains("**Phase failed:** every candidate failed or diverged"));
        assert!(md.contains("| `bad` | `baseline` | — | failed | 10 | boom |"), "{md}");
        assert!(md.contains("| `bad` | `matrix_lr=0.1` | — | diverged | 5 |"), "{md}");
    }

    #[test]
    fn nan_metrics_single_candidates_and_missing_history_do_not_panic() {
        let mut nan = cand(
            "matrix_lr=0.2",
            vec![("matrix_lr", Value::Float(0.2))],
            CandidateStatus::Ok,
            Some(f64::NAN),
            Vec::new(),
        );
        nan.metrics.insert("val_accuracy".into(), f64::NAN);
        nan.repeats[0].history = rows(&[f64::NAN, f64::INFINITY]);
        let single =
            phase("single", vec![cand("baseline", vec![], CandidateStatus::Ok, Some(2.0), Vec::new())], Some(0));
        let with_nan = phase(
            "nan",
            vec![
                cand("baseline", vec![], CandidateStatus::Ok, Some(2.0), rows(&[3.0, 2.0])),
                nan,
                cand(
                    "matrix_lr=0.3",
                    vec![("matrix_lr", Value::Float(0.3))],
                    CandidateStatus::Ok,
                    Some(2.5),
                    rows(&[3.0, 2.5]),
                ),
            ],
            Some(0),
        );
        let (md, _) = check(&study(vec![single, with_nan], None));
        assert!(md.contains("NaN"), "a NaN metric is shown as such");
        assert!(md.contains("## Phase `single`"));
    }

    #[test]
    fn maximize_ranks_the_highest_first_and_gains_read_as_better() {
        let mut p = phase(
            "acc",
            vec![
                cand("baseline", vec![], CandidateStatus::Ok, Some(0.30), Vec::new()),
                cand(
                    "matrix_lr=0.05",
                    vec![("matrix_lr", Value::Float(0.05))],
                    CandidateStatus::Ok,
                    Some(0.40),
                    Vec::new(),
                ),
                cand(
                    "matrix_lr=0.5",
                    vec![("matrix_lr", Value::Float(0.5))],
                    CandidateStatus::Ok,
                    Some(0.20),
                    Vec::new(),
                ),
            ],
            Some(1),
        );
        p.goal = Goal::Maximize;
        let results = study(vec![p], None);
        let v = analysis::analyse(&results).into_iter().next().unwrap();
        assert_eq!(v.order, vec![1, 0, 2]);
        let (d, pct, better) = v.gain().unwrap();
        assert!((d - 0.1).abs() < 1e-12 && (pct - 100.0 / 3.0).abs() < 1e-9 && better);
        assert!(v.close_call.is_none());
    }

    #[test]
    fn a_close_call_is_flagged_within_the_spread_of_repeats() {
        let mut a = cand(
            "matrix_lr=0.05",
            vec![("matrix_lr", Value::Float(0.05))],
            CandidateStatus::Ok,
            Some(2.00),
            Vec::new(),
        );
        a.metrics_std.insert("val_loss".into(), 0.05);
        a.repeats.push(a.repeats[0].clone());
        let b = cand(
            "matrix_lr=0.06",
            vec![("matrix_lr", Value::Float(0.06))],
            CandidateStatus::Ok,
            Some(2.04),
            Vec::new(),
        );
        let p =
            phase("close", vec![cand("baseline", vec![], CandidateStatus::Ok, Some(3.0), Vec::new()), a, b], Some(1));
        let results = study(vec![p], None);
        let v = analysis::analyse(&results).into_iter().next().unwrap();
        let cc = v.close_call.unwrap();
        assert_eq!(cc.runner_up, 2);
        assert!(cc.within_spread && !cc.within_one_percent);
        let (md, _) = check(&results);
        assert!(
            md.contains("**Close call:**")
                && md.contains("less than the pooled standard error of their repeats (0.0612"),
            "{md}"
        );
    }

    #[test]
    fn the_headline_compares_the_final_run_with_the_root_baseline_only_at_equal_budgets() {
        let phases =
            || vec![phase("p", vec![cand("baseline", vec![], CandidateStatus::Ok, Some(3.0), Vec::new())], Some(0))];
        let fin = |steps: i64| {
            let mut f = cand("combined", vec![], CandidateStatus::Ok, Some(2.5), Vec::new());
            let mut cfg = RunConfig::defaults();
            cfg.train.budget = crate::spec::config::Budget::Steps(steps as u64);
            f.config = Some(cfg);
            f
        };
        let default_steps = RunConfig::defaults().total_steps().unwrap() as i64;
        let (md, _) = check(&study(phases(), Some(fin(default_steps))));
        assert!(md.contains("**Result:**") && md.contains("(final run): "), "{md}");
        assert!(!md.contains("budgets differ"), "{md}");
        let (md, _) = check(&study(phases(), Some(fin(default_steps + 20))));
        let result = md.lines().find(|l| l.contains("**Result:**")).unwrap();
        assert!(result.contains("The budgets differ") && !result.contains("better"), "{result}");
        assert!(result.contains(&format!("{} steps", default_steps + 20)), "{result}");
    }

    #[test]
    fn without_a_baseline_candidate_the_incoming_run_is_found_by_key() {
        let key: crate::cache::RunKey = format!("{:064x}", 7).parse().unwrap();
        let mut root = cand("baseline", vec![], CandidateStatus::Ok, Some(3.0), Vec::new());
        root.repeats[0].key = Some(key);
        let first = phase("first", vec![root], Some(0));
        let mut second = phase(
            "second",
            vec![cand(
                "matrix_lr=0.05",
                vec![("matrix_lr", Value::Float(0.05))],
                CandidateStatus::Ok,
                Some(2.7),
                Vec::new(),
            )],
            Some(0),
        );
        second.after = vec!["first".into()];
        second.incoming_key = Some(key);
        let results = study(vec![first, second], None);
        let views = analysis::analyse(&results);
        let (d, _, better) = views[1].gain().unwrap();
        assert!((d + 0.3).abs() < 1e-12 && better);
    }
}
