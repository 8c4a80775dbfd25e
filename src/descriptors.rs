//! Every open connection is a file descriptor, so the connection cap has
//! to fit under the process's open-file limit (`RLIMIT_NOFILE`), beside the
//! descriptors everything else needs.

/// Descriptors kept for what is not a client connection, on top of the
/// database pools: the listener, the runtime's own, log output, and the
/// connections to the auth provider and Airtable.
pub(crate) const HEADROOM: u64 = 256;

/// Raises this process's soft open-file limit to its hard limit (many
/// systems start services at a soft 1,024 under a far higher hard limit)
/// and returns the soft limit now in force; `None` where it is unknown.
pub fn raise_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current != limit.maximum {
            let raised = Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if let Err(e) = setrlimit(Resource::Nofile, raised) {
                tracing::warn!(error = %e, "could not raise the open-file limit to its hard limit");
            }
        }
        // `None` from getrlimit is "unlimited".
        Some(getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX))
    }
    #[cfg(not(unix))]
    None
}

/// How many connections may be open at once: `requested` (or, when not
/// configured, the default lowered to what fits) within `available`
/// descriptors. An explicit cap that does not fit is an error naming
/// `HTTP_MAX_CONNECTIONS`.
pub(crate) fn fit(
    requested: Option<usize>,
    default: usize,
    available: Option<u64>,
    limit: Option<u64>,
) -> Result<usize, String> {
    let Some(available) = available else {
        return Ok(requested.unwrap_or(default));
    };
    let fits = usize::try_from(available).unwrap_or(usize::MAX);
    let limit = limit.unwrap_or(u64::MAX);
    match requested {
        _ if fits == 0 => Err(format!(
            "the open-file limit (RLIMIT_NOFILE, {limit}) leaves no file descriptors for connections; raise it (ulimit -n)"
        )),
        Some(n) if n > fits => Err(format!(
            "{n} connections do not fit under the open-file limit (RLIMIT_NOFILE, {limit}) beside the database pools and outbound calls; set at most {fits}, or raise the limit (ulimit -n)"
        )),
        Some(n) => Ok(n),
        None => Ok(default.min(fits)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_cap_must_fit_and_the_default_is_lowered_to_fit() {
        assert_eq!(fit(Some(500), 10_000, Some(1000), Some(1300)), Ok(500));
        assert_eq!(fit(None, 10_000, Some(1000), Some(1300)), Ok(1000));
        assert_eq!(fit(None, 10_000, Some(50_000), None), Ok(10_000));
        assert_eq!(fit(Some(70_000), 10_000, None, None), Ok(70_000));
        let err = fit(Some(2000), 10_000, Some(1000), Some(1300)).unwrap_err();
        assert!(
            err.contains("at most 1000") && err.contains("1300"),
            "{err}"
        );
        assert!(fit(None, 10_000, Some(0), Some(100)).is_err());
    }

    #[test]
    fn the_raised_limit_is_known_on_unix() {
        let limit = raise_limit();
        assert_eq!(limit.is_some(), cfg!(unix));
    }
}
