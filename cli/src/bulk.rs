//! Acting on many runs: the ids go to the engine a chunk at a time, so one call never names
//! more runs than the engine takes comfortably and progress can be shown between calls.

use std::future::Future;

use anyhow::Context as _;
use hatchet_rest::Uuid;

/// How many runs one replay or cancel call names.
pub(crate) const CHUNK: usize = 500;

/// Calls `act` on `ids`, `chunk` at a time, reporting `"{verb} {done}/{total}"` to `progress`
/// after each call; every task run id the calls answered. A failed call stops there, and its
/// error says how many runs were acted on before it.
pub(crate) async fn in_chunks<F, Fut>(
    ids: &[Uuid],
    chunk: usize,
    verb: &str,
    mut progress: impl FnMut(String),
    mut act: F,
) -> anyhow::Result<Vec<Uuid>>
where
    F: FnMut(Vec<Uuid>) -> Fut,
    Fut: Future<Output = hatchet_rest::Result<Vec<Uuid>>>,
{
    let mut acted = Vec::new();
    let mut done = 0;
    for part in ids.chunks(chunk.max(1)) {
        let answered = act(part.to_vec())
            .await
            .with_context(|| format!("{verb} {done} of {} runs, then", ids.len()))?;
        acted.extend(answered);
        done += part.len();
        progress(format!("{verb} {done}/{}", ids.len()));
    }
    Ok(acted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u128) -> Vec<Uuid> {
        (0..n).map(Uuid::from_u128).collect()
    }

    #[test]
    fn chunks_and_progress() {
        let cases: [(u128, usize, &[usize], &[&str]); 4] = [
            (0, 500, &[], &[]),
            (3, 500, &[3], &["replayed 3/3"]),
            (
                1234,
                500,
                &[500, 500, 234],
                &["replayed 500/1234", "replayed 1000/1234", "replayed 1234/1234"],
            ),
            (4, 2, &[2, 2], &["replayed 2/4", "replayed 4/4"]),
        ];
        for (n, chunk, want_calls, want_progress) in cases {
            let mut calls = Vec::new();
            let mut progress = Vec::new();
            let all = ids(n);
            let acted = futures::executor::block_on(in_chunks(
                &all,
                chunk,
                "replayed",
                |p| progress.push(p),
                |part| {
                    calls.push(part.len());
                    async move { Ok(part) }
                },
            ))
            .unwrap();
            assert_eq!(acted, all, "{n} in chunks of {chunk}");
            assert_eq!(calls, want_calls, "{n} in chunks of {chunk}");
            assert_eq!(progress, want_progress, "{n} in chunks of {chunk}");
        }
    }

    #[test]
    fn a_failed_chunk_stops_and_says_how_far_it_got() {
        let mut calls = 0;
        let e = futures::executor::block_on(in_chunks(
            &ids(5),
            2,
            "cancelled",
            |_| {},
            |part| {
                calls += 1;
                let fail = calls == 2;
                async move {
                    if fail {
                        Err(hatchet_rest::Error::Engine {
                            operation: "v1-task:cancel",
                            status: 500,
                            message: "boom".into(),
                        })
                    } else {
                        Ok(part)
                    }
                }
            },
        ))
        .unwrap_err();
        assert_eq!(calls, 2);
        assert!(e.to_string().starts_with("cancelled 2 of 5 runs, then"), "{e}");
        assert_eq!(crate::exit::code(&e), crate::exit::Code::Failed);
    }
}
