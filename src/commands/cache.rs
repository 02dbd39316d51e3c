//! `lrx cache ls | verify | gc | rm`: look after the run cache.

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use serde_json::json;

use crate::cache::{Lookup, RunKey, Store};
use crate::cli::{CacheCommand, GlobalArgs};
use crate::ops::cache;

use super::Exit;

pub(crate) fn run(cmd: &CacheCommand, g: &GlobalArgs) -> anyhow::Result<Exit> {
    // Reading commands create nothing: a missing or read-only cache can still be looked at.
    let open = || Store::open(&g.cache).with_context(|| format!("cannot open the cache at `{}`", g.cache.display()));
    match cmd {
        CacheCommand::Ls { json } => ls(&Store::at(&g.cache), *json),
        CacheCommand::Verify => verify(&Store::at(&g.cache), g.quiet),
        CacheCommand::Gc { checkpoints: true, dry_run, .. } => drop_checkpoints(&open()?, *dry_run, g.quiet),
        CacheCommand::Gc { keep, all, dry_run, .. } => {
            if keep.is_empty() && !*all && !*dry_run {
                let store = Store::at(&g.cache);
                let n = cache::count(&store)?;
                if n > 0 && !confirm_delete_all(&store, n)? {
                    errln!("nothing deleted");
                    return Ok(Exit::Failure);
                }
            }
            let mut keep_keys = BTreeSet::new();
            for file in keep {
                keep_keys.extend(
                    super::study::reachable_keys(file, g)
                        .with_context(|| format!("cannot read the study `{}`", file.display()))?,
                );
            }
            gc(&open()?, &keep_keys, *dry_run, g.quiet)
        }
        CacheCommand::Rm { keys } => rm(&open()?, keys),
    }
}

/// Asks on the terminal before `gc` without `--keep` deletes every entry; without a terminal to
/// ask on (a script, a pipe), refuses: deleting every run needs `--all` there.
fn confirm_delete_all(store: &Store, entries: usize) -> anyhow::Result<bool> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        bail!(
            "`lrx cache gc` without `--keep` deletes all {entries} entries of `{}`; give `--all` to do that without being asked, or `--keep STUDY` to keep a study's runs",
            store.root().display()
        );
    }
    err!("delete all {entries} entries of `{}`? [y/N] ", store.root().display());
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).context("cannot read the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

fn ls(store: &Store, json: bool) -> anyhow::Result<Exit> {
    let mut rows = Vec::new();
    for key in store.keys()? {
        match store.get(key) {
            Lookup::Hit(e) => {
                let r = &e.result;
                let c = &e.spec.input.config;
                rows.push(json!({
                    "key": key.to_hex(),
                    "status": r.status,
                    "steps": r.steps,
                    "seconds": r.seconds,
                    "val_loss": r.metrics.get("val_loss"),
                    "created": e.spec.created,
                    "bytes": store.entry_size(key),
                    "checkpoint": store.checkpoint(key).is_some(),
                    "checkpoint_bytes": store.checkpoint(key).map_or(0, |p| crate::cache::store::bytes_under(&p)),
                    "trainer": format!("{}/{}", e.spec.input.trainer.name, e.spec.input.trainer.backend),
                    "model": format!("d{} L{} E{}k{}", c.model.d_model, c.model.layers, c.model.experts, c.model.top_k),
                }));
            }
            Lookup::Corrupt(c) => rows.push(json!({"key": key.to_hex(), "status": "corrupt", "error": c.0})),
            Lookup::Miss => {}
        }
    }
    // Failed runs have no entry, but a record: listed so that they are never invisible.
    for key in store.failed_keys() {
        if let Some(record) = store.failure(key)
            && let Some(last) = record.last()
        {
            let c = &record.input.config;
            rows.push(json!({
                "key": key.to_hex(),
                "status": "failed",
                "attempts": record.attempts.len(),
                "created": last.when,
                "error": last.reason,
                "trainer": format!("{}/{}", record.input.trainer.name, record.input.trainer.backend),
                "model": format!("d{} L{} E{}k{}", c.model.d_model, c.model.layers, c.model.experts, c.model.top_k),
            }));
        }
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(Exit::Success);
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["key", "status", "steps", "seconds", "val_loss", "size", "model", "trainer"]);
    for r in &rows {
        let cell = |k: &str| match &r[k] {
            serde_json::Value::Null => "-".to_owned(),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) if k == "seconds" => format!("{:.1}", n.as_f64().unwrap_or(0.0)),
            serde_json::Value::Number(n) if k == "val_loss" => format!("{:.4}", n.as_f64().unwrap_or(0.0)),
            serde_json::Value::Number(n) if k == "bytes" => size_text(n.as_u64().unwrap_or(0)),
            other => other.to_string(),
        };
        let key = cell("key");
        let size = if r["checkpoint"] == true { format!("{} (+ckpt)", cell("bytes")) } else { cell("bytes") };
        table.add_row([
            key[..12].to_owned(),
            cell("status"),
            cell("steps"),
            cell("seconds"),
            cell("val_loss"),
            size,
            cell("model"),
            cell("trainer"),
        ]);
    }
    outln!("{table}");
    let total = |k: &str| rows.iter().filter_map(|r| r[k].as_u64()).sum::<u64>();
    noteln!("{} entries in `{}`, {}", rows.len(), store.root().display(), size_text(total("bytes")));
    let checkpoints = total("checkpoint_bytes");
    if checkpoints > 0 {
        noteln!(
            "{} of it are checkpoints kept to continue halving rungs (`lrx cache gc --checkpoints` deletes them, keeping every result)",
            size_text(checkpoints)
        );
    }
    Ok(Exit::Success)
}

/// `812 B`, `14.2 KB`, `3.1 MB`.
fn size_text(bytes: u64) -> String {
    match bytes {
        b if b < 1_000 => format!("{b} B"),
        b if b < 1_000_000 => format!("{:.1} KB", b as f64 / 1e3),
        b => format!("{:.1} MB", b as f64 / 1e6),
    }
}

fn verify(store: &Store, quiet: bool) -> anyhow::Result<Exit> {
    let keys = store.keys()?;
    let mut bad = 0;
    for key in &keys {
        if let Err(c) = store.verify(*key) {
            bad += 1;
            outln!("{}\tcorrupt\t{}", key.to_hex(), c.0);
        }
    }
    let foreign = store.foreign();
    for path in &foreign {
        outln!("{}\tforeign\tnot an lrx entry (nothing reads it; remove it by hand)", path.display());
    }
    let leftovers = store.leftovers();
    for (path, what) in &leftovers {
        outln!("{}\tleftover\t{what} (`lrx run` or `lrx cache gc` removes it)", path.display());
    }
    // A key may have only a script's kept checkpoint folder (an interrupted attempt), no record.
    let failed = store.failed_keys().into_iter().filter(|k| store.failure(*k).is_some()).count();
    if !quiet {
        errln!(
            "{} entries checked, {bad} corrupt, {} foreign, {} leftovers; {failed} failed runs recorded",
            keys.len(),
            foreign.len(),
            leftovers.len()
        );
        if bad > 0 {
            errln!("hint: `lrx run` recomputes corrupt entries; `lrx cache rm KEY` deletes one");
        }
    }
    // Leftovers are reported but harmless (never read as entries): only what is wrong fails.
    Ok(if bad == 0 && foreign.is_empty() { Exit::Success } else { Exit::Failure })
}

fn gc(store: &Store, keep: &BTreeSet<RunKey>, dry_run: bool, quiet: bool) -> anyhow::Result<Exit> {
    let swept = cache::gc(store, keep, dry_run)?;
    for key in &swept.removed {
        outln!("{}", key.to_hex());
    }
    if !quiet {
        let verb = if dry_run { "would remove" } else { "removed" };
        errln!(
            "{verb} {} entries, kept {}{}",
            swept.removed.len(),
            keep.len(),
            if swept.cleaned > 0 { format!(", cleaned {} unfinished writes", swept.cleaned) } else { String::new() }
        );
    }
    Ok(Exit::Success)
}

fn drop_checkpoints(store: &Store, dry_run: bool, quiet: bool) -> anyhow::Result<Exit> {
    let dropped = cache::drop_checkpoints(store, dry_run)?;
    for (key, _) in &dropped {
        outln!("{}", key.to_hex());
    }
    if !quiet {
        let verb = if dry_run { "would delete" } else { "deleted" };
        let bytes = dropped.iter().map(|(_, b)| b).sum();
        errln!("{verb} {} checkpoints ({}); every result is kept", dropped.len(), size_text(bytes));
    }
    Ok(Exit::Success)
}

fn rm(store: &Store, prefixes: &[String]) -> anyhow::Result<Exit> {
    // A key that matches nothing (or too much) is bad input (exit 1), and nothing is deleted.
    let keys = match cache::find_keys(store, prefixes)? {
        Ok(keys) => keys,
        Err(bad) => {
            for b in bad {
                errln!("error: {b}");
            }
            return Ok(Exit::Failure);
        }
    };
    for k in keys {
        cache::remove(store, k)?;
        outln!("{}", k.to_hex());
    }
    Ok(Exit::Success)
}
