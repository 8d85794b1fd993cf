//! Blocking HTTP GETs for the harness's synchronous waits, made with reqwest on a thread of
//! their own, so sync tests and async programs (the demo) call them alike.

use std::time::Duration;

/// The longest one GET may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// GETs `url` with `query` parameters; the status code and the body.
pub fn get(url: &str, query: &[(&str, &str)]) -> Result<(u16, String), String> {
    let mut url = reqwest::Url::parse(url).map_err(|e| format!("GET {url}: {e}"))?;
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            let client = reqwest::blocking::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .map_err(|e| e.to_string())?;
            let answer = client.get(url.clone()).send().map_err(|e| format!("GET {url}: {e}"))?;
            let code = answer.status().as_u16();
            let body = answer.text().map_err(|e| format!("GET {url}: {e}"))?;
            Ok((code, body))
        })
        .join()
        .map_err(|_| format!("GET {url}: the request's thread panicked"))?
    })
}
