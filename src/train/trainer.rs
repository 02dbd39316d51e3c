//! The training loop: budgets and schedules, one optimizer step per batch, history rows,
//! evaluations, divergence detection, cancellation, checkpoints, and the final [`RunResult`].

use std::collections::BTreeMap;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;

use super::attention::AttnConsts;
use super::checkpoint::{self, LoopState, RowInputs, Snapshot};
use super::data::{Dataset, batch_rng};
use super::metrics::evaluate;
use super::model::{Group, Layout};
use super::moe::draw_noise;
use super::optim::Optimizer;
use super::optim::groups::StepHyper;
use super::rng::{Rng, Stream};
use super::step::{forward_batch, shards_for};
use crate::spec::{
    Budget, Cancelled, Cooldown, CooldownRecord, HistoryRow, Progress, RunConfig, RunContext, RunResult, Status,
};

/// Trains `config` on `data` with backend `B` on `device`: from scratch, or from the checkpoint
/// `ctx.checkpoints` names, saving checkpoints where it asks.
#[allow(clippy::too_many_lines, reason = "the loop reads best in one piece")]
pub fn train<B: AutodiffBackend>(
    config: &RunConfig,
    data: &Dataset,
    device: &B::Device,
    ctx: &mut RunContext<'_>,
) -> Result<RunResult, Cancelled> {
    // Every run, on whichever engine thread it lands: the FPU mode is per thread.
    super::denormals::flush_everywhere();
    let m = &config.model;
    let c = &config.train;
    let (batch, seq) = (c.batch_size, m.seq_len);
    let layout = Layout::new(m, data.tok.vocab_size());
    let counts = layout.counts(m);
    let mut params = layout.init::<B::InnerBackend>(c.seed, device);
    let mut opt = Optimizer::<B::InnerBackend>::new(&layout, c, device);
    let mut batches = batch_rng(c.seed);
    let mut noise_rng = Rng::new(c.seed, Stream::RouterNoise);
    let mut st = LoopState::default();
    if let Some(path) = &ctx.checkpoints.resume_from {
        match checkpoint::load::<B::InnerBackend>(path, config, data, &layout, &mut opt, device) {
            Ok(r) => {
                params = r.params;
                batches.seek(r.batches);
                noise_rng.seek(r.noise);
                st = r.state;
            }
            Err(e) => return Ok(RunResult::failed(format!("cannot resume: {e}"))),
        }
    }
    let consts = AttnConsts::<B>::new(seq, m.d_model, m.heads, m.rope_base, device);
    let eval_consts = AttnConsts::<B::InnerBackend>::new(seq, m.d_model, m.heads, m.rope_base, device);
    let total = config.total_steps();
    let stop = match (total, ctx.stop_at) {
        (Some(t), Some(s)) => Some(t.min(s)),
        (t, s) => t.or(s),
    };
    (ctx.progress)(Progress::Started { total_steps: total, params: Some(counts) });

    let use_noise = m.experts > 1 && m.router_noise > 0.0;
    let shards = shards_for::<B>(batch);
    // Divergence is judged only after warmup.
    let warmup = c.schedule.warmup();
    // A resumed run's clock continues from the checkpoint's (timing metrics, time budgets).
    let start = Instant::now();
    let elapsed_before = st.elapsed;
    let elapsed = || elapsed_before + start.elapsed().as_secs_f64();
    let mut windows = Vec::with_capacity(batch * (seq + 1));
    let mut diverged_at = None;
    let tokens_per_step = (batch * seq) as u64;
    // Seconds in forward, backward and optimizer, printed with `LRX_PROFILE=1`.
    let mut prof = [0.0f64; 3];
    // A checkpoint is taken between a step and its history row: a resumed run starts with the
    // row of the checkpoint's step.
    let mut pending = st.row.take();
    // A rung stopped before its schedule's late decay is measured on a cooldown branch: after
    // its last row (and its checkpoint), the loop trains the branch's steps with rows, saves
    // and evaluations off, then evaluates once.
    let cooldown = match (ctx.cooldown, stop, total) {
        (true, Some(s), Some(t)) => c.schedule.cooldown(s, t),
        _ => None,
    };
    let mut branch: Option<Branch> = None;

    loop {
        let row_in = if let Some(row_in) = pending.take() {
            row_in
        } else {
            if ctx.cancel.is_cancelled() {
                return Err(Cancelled);
            }
            let (t, mult) = if let Some(b) = &branch {
                if b.done >= b.cooldown.steps {
                    break;
                }
                (b.cooldown.progress(b.done), b.cooldown.multiplier(&c.schedule, b.done))
            } else {
                let t = match (c.budget, total) {
                    (Budget::Time(limit), _) => elapsed() / limit,
                    (_, Some(total)) => crate::spec::schedule::progress(st.step, total),
                    _ => 1.0,
                };
                let done = match c.budget {
                    Budget::Time(_) => st.step > 0 && t >= 1.0,
                    _ => false,
                } || stop.is_some_and(|s| st.step >= s);
                if done {
                    match cooldown.filter(|_| stop == Some(st.step)) {
                        Some(cooldown) => {
                            let at_rung = final_metrics(&st, elapsed());
                            branch = Some(Branch { cooldown, done: 0, at: st.step, at_rung });
                            continue;
                        }
                        None => break,
                    }
                }
                (t, c.schedule.multiplier(t))
            };
            let hyper = StepHyper::at(c, st.step, t, mult);

            let t0 = Instant::now();
            data.sample(&mut batches, batch, seq, &mut windows);
            // Drawn for the whole batch, layer by layer, before any shard runs.
            let noise: Option<Vec<Vec<f32>>> = use_noise.then(|| {
                layout
                    .layers
                    .iter()
                    .map(|_| draw_noise(&mut noise_rng, batch * seq, m.experts, m.router_noise))
                    .collect()
            });
            let tf = Instant::now();
            let fwd = forward_batch::<B>(
                m,
                &layout,
                &params,
                &consts,
                &windows,
                batch,
                shards,
                noise.as_deref(),
                c.precision,
                device,
            );
            prof[0] += tf.elapsed().as_secs_f64();
            let (ce, aux) = (fwd.ce, fwd.aux);
            let initial = *st.initial_loss.get_or_insert(ce);
            let past_warmup = st.step > 0 && t >= warmup;
            if !ce.is_finite() || !aux.is_finite() || (past_warmup && ce > c.diverge_factor * initial) {
                diverged_at = Some(st.step + 1);
                st.running.add(ce, aux);
                st.last_train = st.running.take().or(st.last_train);
                break;
            }
            let tb = Instant::now();
            let g = fwd.backward();
            prof[1] += tb.elapsed().as_secs_f64();
            let to = Instant::now();
            let grad_norm = opt.step(&mut params, g, &hyper);
            prof[2] += to.elapsed().as_secs_f64();
            st.train_secs += t0.elapsed().as_secs_f64();
            st.step += 1;
            st.running.add(ce, aux);
            let tps = (st.step * tokens_per_step) as f64 / st.train_secs.max(1e-9);
            (ctx.progress)(Progress::Step {
                step: st.step,
                total_steps: total,
                loss: ce,
                lr: mult,
                tokens_per_sec: tps,
            });
            if let Some(b) = &mut branch {
                // The branch is never saved nor continued: on a stop signal the state saved at
                // the rung is what the next attempt continues from.
                if ctx.checkpoints.stop.is_raised() {
                    return Err(Cancelled);
                }
                b.done += 1;
                continue;
            }
            let row_in = RowInputs { mult, lrs: hyper.lr, grad_norm };
            if ctx.checkpoints.due(st.step)
                && let Some(path) = &ctx.checkpoints.save_to
            {
                st.row = Some(row_in);
                st.elapsed = elapsed();
                let snapshot = Snapshot {
                    config,
                    data,
                    layout: &layout,
                    params: &params,
                    optimizer: &opt,
                    batches: batches.position(),
                    noise: noise_rng.position(),
                    state: &st,
                };
                let saved = checkpoint::save(path, &snapshot);
                st.row = None;
                if let Err(e) = saved {
                    return Ok(RunResult::failed(e.to_string()));
                }
                ctx.checkpoints.stop.record_saved(st.step);
                if ctx.checkpoints.stop.is_raised() {
                    return Err(Cancelled);
                }
            }
            row_in
        };

        let step = st.step;
        let tokens = step * tokens_per_step;
        let tps = tokens as f64 / st.train_secs.max(1e-9);
        let is_last = stop.is_some_and(|s| step >= s);
        let eval_now = step.is_multiple_of(c.eval_every) || is_last;
        if step.is_multiple_of(c.log_every) || eval_now {
            let mut row = BTreeMap::new();
            if let Some((l, a)) = st.running.take() {
                row.insert("train_loss".into(), l);
                row.insert("aux_loss".into(), a);
                st.last_train = Some((l, a));
            }
            row.insert("lr".into(), row_in.mult);
            for g in Group::ALL {
                row.insert(format!("lr_{}", g.name()), row_in.lrs[g as usize]);
            }
            row.insert("grad_norm".into(), row_in.grad_norm);
            row.insert("tokens".into(), tokens as f64);
            row.insert("tokens_per_sec".into(), tps);
            if eval_now {
                let e = evaluate(m, &layout, &params, &eval_consts, data, batch, c.precision);
                e.insert_into(&mut row);
                st.last_eval = Some((step, e));
            }
            row.insert("elapsed".into(), elapsed());
            let row = HistoryRow { step, metrics: row };
            (ctx.progress)(Progress::Row(row.clone()));
            st.history.push(row);
        }
    }

    // The branch's end is the rung's measurement (its history ends at the rung).
    if let Some(b) = &branch
        && diverged_at.is_none()
    {
        if let Some((l, a)) = st.running.take() {
            st.last_train = Some((l, a));
        }
        let e = evaluate(m, &layout, &params, &eval_consts, data, batch, c.precision);
        st.last_eval = Some((b.at, e));
    }
    let step = branch.as_ref().map_or(st.step, |b| b.at);
    // Time budgets end between evaluations: evaluate the final weights.
    if branch.is_none() && diverged_at.is_none() && st.last_eval.is_none_or(|(s, _)| s != step) && step > 0 {
        if let Some((l, a)) = st.running.take() {
            st.last_train = Some((l, a));
        }
        let e = evaluate(m, &layout, &params, &eval_consts, data, batch, c.precision);
        let mut row = BTreeMap::new();
        if let Some((l, a)) = st.last_train {
            row.insert("train_loss".into(), l);
            row.insert("aux_loss".into(), a);
        }
        e.insert_into(&mut row);
        row.insert("tokens".into(), (step * tokens_per_step) as f64);
        row.insert("elapsed".into(), elapsed());
        let row = HistoryRow { step, metrics: row };
        (ctx.progress)(Progress::Row(row.clone()));
        st.history.push(row);
        st.last_eval = Some((step, e));
    }

    let seconds = elapsed();
    let tokens = step * tokens_per_step;
    if std::env::var_os("LRX_PROFILE").is_some() && st.step > 0 {
        let ms = |x: f64| x * 1000.0 / st.step as f64;
        eprintln!(
            "per step: forward {:.2} ms, backward {:.2} ms, optimizer {:.2} ms, total {:.2} ms",
            ms(prof[0]),
            ms(prof[1]),
            ms(prof[2]),
            ms(st.train_secs)
        );
    }
    let metrics = final_metrics(&st, seconds);
    Ok(RunResult {
        status: if diverged_at.is_some() { Status::Diverged } else { Status::Ok },
        steps: step,
        tokens,
        seconds,
        tokens_per_sec: (st.step * tokens_per_step) as f64 / st.train_secs.max(1e-9),
        params: Some(counts),
        metrics,
        history: st.history,
        diverged_at,
        error: None,
        exit_code: None,
        log_tail: None,
        finished_at: None,
        cooldown: branch.map(|b| CooldownRecord { steps: b.cooldown.steps, at_rung: b.at_rung }),
    })
}

/// A rung's cooldown branch under way: `done` of its steps trained after step `at`, where the
/// run measured `at_rung`.
struct Branch {
    cooldown: Cooldown,
    done: u64,
    at: u64,
    at_rung: BTreeMap<String, f64>,
}

/// A run's metrics from its last training loss and evaluation, `seconds` into it.
fn final_metrics(st: &LoopState, seconds: f64) -> BTreeMap<String, f64> {
    let mut metrics = BTreeMap::new();
    if let Some((l, a)) = st.last_train {
        metrics.insert("train_loss".to_owned(), l);
        metrics.insert("aux_loss".to_owned(), a);
    }
    if let Some((_, e)) = &st.last_eval {
        e.insert_into(&mut metrics);
        metrics.insert("acc_per_min".to_owned(), e.accuracy / (seconds / 60.0).max(1e-9));
    }
    metrics
}
