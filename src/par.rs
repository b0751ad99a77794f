//! Data parallelism for pure per-item work (signing, verifying, validating peers): one place
//! that splits a slice over scoped threads and puts the results back in order.

/// `items.iter().map(f)`, in order, on up to `available_parallelism()` scoped threads of at
/// least `per_thread` items each (on the calling thread alone below that). `None` when a worker
/// panicked (a bug): the caller decides what that means. `f` must be pure (no logs, no metrics:
/// their order would depend on scheduling); callers report in item order afterwards.
pub fn map<T: Sync, U: Send>(
    items: &[T],
    per_thread: usize,
    f: impl Fn(&T) -> U + Sync,
) -> Option<Vec<U>> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cores.min(items.len() / per_thread.max(1)).max(1);
    if threads == 1 {
        return Some(items.iter().map(&f).collect());
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(f).collect::<Vec<U>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for worker in workers {
            out.extend(worker.join().ok()?);
        }
        Some(out)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_on_one_thread_and_on_many() {
        let items: Vec<u32> = (0..1000).collect();
        for per_thread in [1, 10, 10_000] {
            let out = super::map(&items, per_thread, |i| i * 2).unwrap();
            assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
        assert_eq!(super::map(&[] as &[u32], 1, |i| *i), Some(vec![]));
    }
}
