//! The neutral layer every other module agrees on: values, the key schema, the resolved run
//! config, schedules, a command trainer's argument template, and the `Trainer` contract.
//!
//! It depends on nothing else in the crate, so the language, the planner, the executor and the
//! trainer can all use it without depending on each other.

pub mod command;
pub mod config;
mod goal;
mod nonfinite;
pub mod run;
pub mod schedule;
pub mod schema;
pub mod value;

pub use config::{
    Budget, DataConfig, ModelConfig, NsCoeffs, OptimizerKind, Precision, RunConfig, Tokenizer, TrainConfig,
    TrainerSpec, Values,
};
pub use goal::Goal;
pub use run::{
    CancelFlag, Cancelled, CheckpointSignal, Checkpoints, CooldownRecord, HistoryRow, MACHINE_METRICS, ParamCounts,
    Progress, RunContext, RunResult, Status, Stop, Trainer, TrainerIdentity, depends_on_machine, describe_failure,
    measures_machine,
};
pub use schedule::{Cooldown, CooldownRule, Schedule, WdSchedule};
pub use schema::{Key, Section};
pub use value::{Call, Value};
