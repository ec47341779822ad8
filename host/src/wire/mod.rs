//! The wire contract: one JSON object per line in, one per line out. Field names and spellings
//! are fixed by existing clients (`firma-run`, `firma token`); see the README's wire section.
//!
//! `types` holds the requests and answers, `parse` reads a line into a request, `render` turns
//! a flow's answer into its line (the one place a denial body is attached), and `frame` reads
//! lines off a stream.

use crate::action::{Action, Connect, Header, HttpRequest, LocalExec, ToolCall, Upgrade};
use crate::answer::{Decided, Found, Managed, Queried};
use crate::decision::Verdict;
use crate::tokens::{Operation, Outcome};
use serde::{Deserialize, Serialize};

mod frame;
mod parse;
mod render;
mod types;

pub use frame::{Line, read_line};
pub use parse::{RequestError, parse_request};
pub(crate) use render::{render_decision, render_management, render_query};
pub use types::*;

/// Longest request line accepted, counting its newline (firma's limit): 65,535 bytes and a
/// `\n` are served; 65,536 and a `\n` close the connection unanswered.
pub const MAX_LINE: usize = 64 * 1024;
