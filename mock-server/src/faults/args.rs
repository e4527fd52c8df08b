//! A fault's arguments: what each means, how it is written, how it is
//! parsed and checked. Every parse error names the fault and what it wants,
//! and an unknown name lists the similar ones, all from the registry.

use std::time::Duration;

use super::registry::{Row, rows};

/// An argument, by what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// Milliseconds.
    Ms,
    /// A 1-based delta number.
    N,
    /// A 1-based delta number after which something happens.
    After,
    /// An HTTP error status (400-599).
    Code,
    /// A path prefix (optional, default `/api`).
    Prefix,
    /// 1 in EVERY (at least 1).
    Every,
    /// A seed (optional, default 0).
    Seed,
}

impl Arg {
    /// How the argument is written in the catalogue.
    pub fn placeholder(self) -> &'static str {
        match self {
            Arg::Ms => "MS",
            Arg::N => "N",
            Arg::After => "AFTER",
            Arg::Code => "CODE",
            Arg::Prefix => "PREFIX",
            Arg::Every => "EVERY",
            Arg::Seed => "SEED",
        }
    }

    /// Its key in `GET /__admin/faults`.
    pub fn key(self) -> &'static str {
        match self {
            Arg::Ms => "ms",
            Arg::N => "n",
            Arg::After => "after",
            Arg::Code => "status",
            Arg::Prefix => "prefix",
            Arg::Every => "every",
            Arg::Seed => "seed",
        }
    }
}

/// A parsed argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Number(u64),
    Text(String),
}

/// A fault's parsed arguments, in the order of its row's `args`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args(pub Vec<Value>);

impl Args {
    pub(super) fn num(&self, i: usize) -> u64 {
        match self.0.get(i) {
            Some(Value::Number(n)) => *n,
            _ => 0,
        }
    }
    pub(super) fn pos(&self, i: usize) -> usize {
        usize::try_from(self.num(i)).unwrap_or(usize::MAX)
    }
    pub(super) fn ms(&self, i: usize) -> Duration {
        Duration::from_millis(self.num(i))
    }
    pub(super) fn text(&self, i: usize) -> String {
        match self.0.get(i) {
            Some(Value::Text(t)) => t.clone(),
            _ => "/api".to_string(),
        }
    }
}

/// Parses `NAME[:ARG…]` against the registry.
pub fn parse(spec: &str) -> Result<(&'static Row, Args), String> {
    let mut parts = spec.split(':');
    let name = parts.next().unwrap_or_default();
    let given: Vec<&str> = parts.collect();
    let Some(row) = rows().find(|r| r.name == name) else {
        return Err(unknown(name));
    };
    if given.len() > row.args.len() {
        return Err(if row.args.is_empty() {
            format!("{name} takes no arguments")
        } else {
            format!(
                "{name} takes at most {} arguments: {}",
                row.args.len(),
                row.usage()
            )
        });
    }
    let mut args = Vec::with_capacity(row.args.len());
    for (i, arg) in row.args.iter().enumerate() {
        let raw = given.get(i).copied();
        let number = |what: &str| -> Result<u64, String> {
            let raw = raw.ok_or_else(|| format!("{name} needs {what} (see the fault list)"))?;
            raw.parse::<u64>()
                .map_err(|_| format!("{name}: {what} must be a number, got {raw:?}"))
        };
        let value = match arg {
            Arg::Ms => Value::Number(number("MS")?),
            Arg::N | Arg::After => {
                let n = number("a 1-based delta number N")?;
                if n == 0 {
                    return Err(format!("{name}: delta numbers start at 1"));
                }
                Value::Number(n)
            }
            Arg::Code => {
                let status = number("an HTTP status CODE")?;
                if !(400..600).contains(&status) {
                    return Err(format!("{name}: {status} is not an error status (400-599)"));
                }
                Value::Number(status)
            }
            Arg::Prefix => Value::Text(raw.unwrap_or("/api").to_string()),
            Arg::Every => {
                let every = number("EVERY (1 in EVERY deltas)")?;
                if every == 0 {
                    return Err(format!("{name}: EVERY must be at least 1"));
                }
                Value::Number(every)
            }
            Arg::Seed => Value::Number(if raw.is_some() { number("SEED")? } else { 0 }),
        };
        args.push(value);
    }
    Ok((row, Args(args)))
}

/// The error for an unknown name: similar names first, then all of them.
fn unknown(name: &str) -> String {
    let similar: Vec<String> = rows()
        .filter(|r| r.name.contains(name) || name.contains(r.name))
        .map(Row::usage)
        .collect();
    let hint = if similar.is_empty() {
        String::new()
    } else {
        format!(" (similar: {})", similar.join(", "))
    };
    let all: Vec<String> = rows().map(Row::usage).collect();
    format!(
        "unknown fault {name:?}{hint}; known faults: {}",
        all.join(", ")
    )
}
