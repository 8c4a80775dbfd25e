//! Where the next page of a user listing starts, from the headers GoTrue
//! sends with it.

use reqwest::header::HeaderMap;
use reqwest::Url;

/// The page after `page`: from `Link: <…?page=N…>; rel="next"` when present
/// (its absence means this is the last page), else from `X-Total-Count`,
/// else guessed from whether the page came back full.
pub(super) fn next_page(
    headers: &HeaderMap,
    page: u32,
    per_page: u32,
    returned: usize,
) -> Result<Option<u32>, String> {
    let links: Vec<&str> = headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !links.is_empty() {
        let next = links.iter().find_map(|l| link_target(l, "next"));
        return match next {
            None => Ok(None),
            Some(target) => match page_param(target) {
                Some(n) if n > page => Ok(Some(n)),
                // A "next" that does not move forward would loop forever.
                Some(n) => Err(format!(
                    "Link header points back to page {n} from page {page}"
                )),
                None => Err(format!("Link header has no page number in {target:?}")),
            },
        };
    }
    if let Some(total) = headers
        .get("x-total-count")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        let pages = total.div_ceil(u64::from(per_page.max(1)));
        return Ok((u64::from(page) < pages).then_some(page + 1));
    }
    Ok((returned > 0 && returned >= per_page as usize).then_some(page + 1))
}

/// The target of the first link whose `rel` includes `rel` (RFC 8288: a
/// comma-separated list of `<target>; param=value` entries, where `rel` may
/// hold several space-separated relation types).
fn link_target<'a>(header: &'a str, rel: &str) -> Option<&'a str> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>')?;
        let target = &after[..close];
        let tail = &after[close + 1..];
        // Parameters run up to the next entry's `<` (a `<` cannot appear
        // unquoted in parameters, unlike `,` inside a target).
        let params_end = tail.find('<').unwrap_or(tail.len());
        let matches = tail[..params_end].split([';', ',']).any(|param| {
            param.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case(rel))
            })
        });
        if matches {
            return Some(target);
        }
        rest = &tail[params_end..];
    }
    None
}

/// The whole `page` query parameter of a link target, absolute or relative.
fn page_param(target: &str) -> Option<u32> {
    let base = Url::parse("http://link.invalid/").ok()?;
    let url = base.join(target.trim()).ok()?;
    let value = url
        .query_pairs()
        .find(|(k, _)| k == "page")
        .map(|(_, v)| v.into_owned())?;
    value.trim().parse().ok()
}
