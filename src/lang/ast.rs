//! The syntax tree of a `.lrx` file, as written: every node carries the byte span it came from.
//!
//! Spans never take part in equality: two trees are equal when they say the same thing,
//! wherever it was written (`parse(fmt(x)) == parse(x)` relies on this).

use std::fmt;

pub use crate::diag::Span;

/// A name as written: a phase, a metric, a constructor argument.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A possibly dotted key: `matrix_lr`, `schedule.warmup`, `data.tokens`.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyPath {
    pub parts: Vec<Ident>,
    pub span: Span,
}

impl KeyPath {
    /// The path as written, dots included.
    pub fn text(&self) -> String {
        self.parts.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(".")
    }

    pub fn is(&self, name: &str) -> bool {
        self.parts.len() == 1 && self.parts[0].name == name
    }
}

/// A whole file: its items in source order, and its comments (kept for `lrx fmt`).
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
    pub comments: Vec<Comment>,
}

/// A `# ...` comment, text without the newline.
#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Block(Block),
    Objective(Objective),
    Phase(Phase),
    Final(Final),
    /// A top-level `find ...`: a phase named `find_<key>`.
    Find(Find),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Block(b) => b.span,
            Item::Objective(o) => o.span,
            Item::Phase(p) => p.span,
            Item::Final(f) => f.span,
            Item::Find(f) => f.span,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    Model,
    Data,
    Train,
    /// `params {}`: keys the study declares for its own script.
    Params,
    /// `budget {}`: how many runs and how much training time the whole study may take.
    Budget,
}

impl BlockKind {
    pub fn name(self) -> &'static str {
        match self {
            BlockKind::Model => "model",
            BlockKind::Data => "data",
            BlockKind::Train => "train",
            BlockKind::Params => "params",
            BlockKind::Budget => "budget",
        }
    }
}

/// `model { ... }`, `data { ... }`, `train { ... }`, `params { ... }`, `budget { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub kind: BlockKind,
    pub kind_span: Span,
    pub body: Body,
    pub span: Span,
}

/// The statements between braces.
#[derive(Clone, Debug, PartialEq)]
pub struct Body {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

/// One `Goal` for the whole crate (the language's, the winner's, the report's).
pub use crate::spec::Goal;

/// `objective minimize val_loss`.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    pub goal: Goal,
    pub metric: Ident,
    pub span: Span,
}

/// `phase NAME [after A, B] { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    pub name: Ident,
    pub after: Vec<Ident>,
    pub body: Body,
    pub span: Span,
}

/// Where a final run starts from.
#[derive(Clone, Debug, PartialEq)]
pub enum FinalFrom {
    /// `final combine(A, B)`: the root with each listed phase's winning changes.
    Combine(Vec<Ident>),
    /// `final after P`: P's winner again. More than one name is a checker error.
    After(Vec<Ident>),
}

/// `final combine(...) { ... }` or `final after P { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Final {
    pub from: FinalFrom,
    pub body: Option<Body>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Assign(Assign),
    Objective(Objective),
    Vary(Clause),
    Grid(Group),
    Zip(Group),
    Find(Find),
}

impl Stmt {
    pub fn span(&self) -> Span {
        match self {
            Stmt::Assign(a) => a.span,
            Stmt::Objective(o) => o.span,
            Stmt::Vary(c) => c.span,
            Stmt::Grid(g) | Stmt::Zip(g) => g.span,
            Stmt::Find(f) => f.span,
        }
    }
}

/// `key = value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Assign {
    pub key: KeyPath,
    pub value: Expr,
    pub span: Span,
}

/// `key in values` (after `vary`, or inside `grid {}` / `zip {}`). For `vary` the span
/// starts at the keyword.
#[derive(Clone, Debug, PartialEq)]
pub struct Clause {
    pub key: KeyPath,
    pub values: Expr,
    pub span: Span,
}

/// `grid { ... }` or `zip { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub clauses: Vec<Clause>,
    pub span: Span,
}

/// `find KEY from A to B (steps = N, pick = min / 10)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Find {
    pub key: KeyPath,
    pub from: Expr,
    pub to: Expr,
    pub options: Vec<NamedArg>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NamedArg {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

/// A call argument: named (`warmup = 0.05`) or positional (`name` is `None`).
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }

    /// Binding strength: `*` and `/` bind tighter than `+` and `-`.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Add | BinOp::Sub => 1,
            BinOp::Mul | BinOp::Div => 2,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A number as written (`500_000`, `1e-3`); its value is in `value`.
    Number {
        text: String,
        value: Number,
    },
    Duration {
        text: String,
        seconds: f64,
    },
    Str(String),
    Bool(bool),
    /// A key reference, `base`, or a bare word (`muon_adamw`): which one is decided by the
    /// checker against the schema.
    Name(KeyPath),
    List(Vec<Expr>),
    Tuple(Vec<Expr>),
    /// `name(args)`: a constructor, or a generated list (`log`, `lin`).
    Call {
        name: Ident,
        args: Vec<Arg>,
    },
    Neg(Box<Expr>),
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `( expr )`, kept so that formatting round-trips.
    Group(Box<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Expr {
    /// Whether `base` occurs anywhere inside.
    pub fn uses_base(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| {
            if let ExprKind::Name(p) = &e.kind
                && p.is("base")
            {
                found = true;
            }
        });
        found
    }

    /// Calls `f` on this expression and every expression inside it.
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match &self.kind {
            ExprKind::List(items) | ExprKind::Tuple(items) => items.iter().for_each(|e| e.walk(f)),
            ExprKind::Call { args, .. } => args.iter().for_each(|a| a.value.walk(f)),
            ExprKind::Neg(e) | ExprKind::Group(e) => e.walk(f),
            ExprKind::Binary { lhs, rhs, .. } => {
                lhs.walk(f);
                rhs.walk(f);
            }
            ExprKind::Number { .. }
            | ExprKind::Duration { .. }
            | ExprKind::Str(_)
            | ExprKind::Bool(_)
            | ExprKind::Name(_) => {}
        }
    }
}

/// Compact canonical text of an expression, as in variant names: `base*0.5`,
/// `lin(base-0.04,base+0.04,n=9)`.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Number { text, .. } | ExprKind::Duration { text, .. } => f.write_str(text),
            ExprKind::Str(s) => write!(f, "{s:?}"),
            ExprKind::Bool(b) => write!(f, "{b}"),
            ExprKind::Name(p) => f.write_str(&p.text()),
            ExprKind::List(items) => {
                f.write_str("[")?;
                joined(f, items)?;
                f.write_str("]")
            }
            ExprKind::Tuple(items) => {
                f.write_str("(")?;
                joined(f, items)?;
                f.write_str(")")
            }
            ExprKind::Call { name, args } => {
                write!(f, "{}(", name.name)?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    if let Some(n) = &a.name {
                        write!(f, "{}=", n.name)?;
                    }
                    write!(f, "{}", a.value)?;
                }
                f.write_str(")")
            }
            ExprKind::Neg(e) => write!(f, "-{e}"),
            ExprKind::Binary { op, lhs, rhs } => write!(f, "{lhs}{}{rhs}", op.symbol()),
            ExprKind::Group(e) => write!(f, "({e})"),
        }
    }
}

fn joined(f: &mut fmt::Formatter<'_>, items: &[Expr]) -> fmt::Result {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{e}")?;
    }
    Ok(())
}
