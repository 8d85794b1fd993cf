//! Log lines of a task run: what the official SDKs' `logs` feature client does, read
//! oldest first as a stream. The engine pages these by time, not offset (`since` is
//! exclusive), so the stream moves a time cursor and never drops or repeats a line that
//! shares its timestamp with the end of a page.

use chrono::{DateTime, Duration, Utc};
use futures::{Stream, TryStreamExt};

use crate::error::answer;
use crate::generated::prelude::*;
use crate::types::{V1LogLine, V1LogLineLevel, V1LogLineOrderByDirection};
use crate::{PAGE_SIZE, Rest, Result, Uuid};

/// Which log lines of a task run to read.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Only lines at these levels (any when empty).
    pub levels: Vec<V1LogLineLevel>,
    /// Only lines containing this text (case-insensitive).
    pub search: Option<String>,
    /// Only lines of this attempt (1 is the first).
    pub attempt: Option<i64>,
    /// Only lines written after this.
    pub since: Option<DateTime<Utc>>,
    /// Only lines written before this.
    pub until: Option<DateTime<Utc>>,
}

/// Log lines of task runs.
#[derive(Debug, Clone, Copy)]
pub struct Logs<'a> {
    pub(crate) rest: &'a Rest,
}

impl Logs<'_> {
    /// The lines of task run `task` that `filter` matches, oldest first, page by page as the
    /// stream is read.
    pub fn task(&self, task: Uuid, filter: &LogFilter) -> impl Stream<Item = Result<V1LogLine>> + '_ {
        const OP: &str = "v1-log-line:list";
        let filter = filter.clone();
        let start = Cursor::start(filter.since);
        futures::stream::try_unfold(Some(start), move |cursor| {
            let filter = filter.clone();
            async move {
                let Some(cursor) = cursor else { return Ok(None) };
                let mut call = self
                    .rest
                    .api
                    .v1_log_line_list()
                    .task(task)
                    .limit(PAGE_SIZE)
                    .order_by_direction(V1LogLineOrderByDirection::Asc)
                    .levels(filter.levels.clone());
                if let Some(since) = cursor.query_since() {
                    call = call.since(since);
                }
                if let Some(until) = filter.until {
                    call = call.until(until);
                }
                if let Some(s) = &filter.search {
                    call = call.search(s.clone());
                }
                if let Some(a) = filter.attempt {
                    call = call.attempt(a);
                }
                let page = answer(OP, call.send()).await?;
                let full = page.rows.len() >= usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX);
                let (fresh, next) = cursor.advance(page.rows, full);
                Ok(Some((futures::stream::iter(fresh.into_iter().map(Ok)), next)))
            }
        })
        .try_flatten()
    }
}

/// Where the next page of log lines starts: after `after`, skipping the lines already
/// delivered that share its timestamp (the engine's `since` is exclusive, so the query asks
/// from just before `after` and drops those).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cursor {
    after: Option<DateTime<Utc>>,
    /// Lines delivered at `after` exactly, as (message, retry count).
    seen: Vec<(String, Option<i64>)>,
    /// Whether `seen` must be skipped (false for a caller's own `since`).
    overlap: bool,
}

impl Cursor {
    pub(crate) fn start(since: Option<DateTime<Utc>>) -> Self {
        Self {
            after: since,
            seen: Vec::new(),
            overlap: false,
        }
    }

    /// The `since` to ask for.
    pub(crate) fn query_since(&self) -> Option<DateTime<Utc>> {
        match (self.after, self.overlap) {
            (Some(at), true) => Some(at - Duration::microseconds(1)),
            (at, _) => at,
        }
    }

    /// The lines of `page` not delivered before, and the cursor after them (`None` when this
    /// was the last page: not `full`, or nothing new on a full page).
    pub(crate) fn advance(self, page: Vec<V1LogLine>, full: bool) -> (Vec<V1LogLine>, Option<Cursor>) {
        let fresh: Vec<V1LogLine> = page
            .into_iter()
            .filter(|l| {
                !(self.overlap
                    && Some(l.created_at) == self.after
                    && self.seen.contains(&(l.message.clone(), l.retry_count)))
            })
            .collect();
        let Some(last) = fresh.last().map(|l| l.created_at) else {
            return (fresh, None);
        };
        if !full {
            return (fresh, None);
        }
        let mut seen: Vec<(String, Option<i64>)> = if self.after == Some(last) {
            self.seen
        } else {
            Vec::new()
        };
        seen.extend(
            fresh
                .iter()
                .filter(|l| l.created_at == last)
                .map(|l| (l.message.clone(), l.retry_count)),
        );
        let next = Cursor {
            after: Some(last),
            seen,
            overlap: true,
        };
        (fresh, Some(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at_us: i64, message: &str) -> V1LogLine {
        V1LogLine {
            attempt: Some(1),
            created_at: DateTime::from_timestamp_micros(at_us).unwrap(),
            level: Some(V1LogLineLevel::Info),
            message: message.into(),
            metadata: Default::default(),
            retry_count: Some(0),
            task_display_name: None,
            task_external_id: None,
        }
    }

    fn messages(lines: &[V1LogLine]) -> Vec<&str> {
        lines.iter().map(|l| l.message.as_str()).collect()
    }

    #[test]
    fn a_short_page_is_the_last() {
        let (fresh, next) = Cursor::start(None).advance(vec![line(1, "a"), line(2, "b")], false);
        assert_eq!(messages(&fresh), ["a", "b"]);
        assert_eq!(next, None);
    }

    #[test]
    fn lines_sharing_the_page_end_timestamp_are_neither_lost_nor_repeated() {
        // Page 1 ends with two lines at t=5; a third line at t=5 is on the next page.
        let (fresh, next) = Cursor::start(None).advance(vec![line(1, "a"), line(5, "b"), line(5, "c")], true);
        assert_eq!(messages(&fresh), ["a", "b", "c"]);
        let next = next.expect("a full page has a next");
        assert_eq!(next.query_since(), DateTime::from_timestamp_micros(4));
        // The engine answers from after t=4: b and c again, then d at t=5 and e at t=9.
        let page2 = vec![line(5, "b"), line(5, "c"), line(5, "d"), line(9, "e")];
        let (fresh, next) = next.advance(page2, false);
        assert_eq!(messages(&fresh), ["d", "e"]);
        assert_eq!(next, None);
    }

    #[test]
    fn a_full_page_of_nothing_new_ends_the_stream() {
        let (_, next) = Cursor::start(None).advance(vec![line(5, "a")], true);
        let (fresh, next) = next.unwrap().advance(vec![line(5, "a")], true);
        assert!(fresh.is_empty());
        assert_eq!(next, None);
    }

    #[test]
    fn the_callers_since_is_asked_as_given() {
        let since = DateTime::from_timestamp_micros(10);
        assert_eq!(Cursor::start(since).query_since(), since);
    }
}
