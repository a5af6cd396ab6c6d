//! One process's share of an epoch when several processes train on it (data-parallel
//! training): torch's `DistributedSampler` rules for training, where every rank gets as many
//! samples (the order padded by repeating its start, or its tail dropped), and uneven shards for
//! evaluation, where every sample counts exactly once.
//!
//! Both take the epoch's order (shuffled from the seed and the epoch, the same on every rank) and
//! return this rank's rows in it, so that a rank's batches depend only on the seed, the epoch,
//! the rank and the world size.

/// How many samples each of `world` ranks trains on in an epoch of `n` (`DistributedSampler`'s
/// `num_samples`): `n / world` rounded up, or rounded down with `drop_tail`.
pub fn samples_per_rank(n: usize, world: usize, drop_tail: bool) -> usize {
    assert!(world >= 1, "a world of at least one process");
    if drop_tail && !n.is_multiple_of(world) {
        // torch: ceil((n - world) / world), which is 0 when n < world.
        n.saturating_sub(world).div_ceil(world)
    } else {
        n.div_ceil(world)
    }
}

/// Rank `rank`'s training rows of an epoch `order`, as `DistributedSampler` (without its own
/// shuffle, since `order` is shuffled already): the order is padded with its first samples
/// until every rank has [`samples_per_rank`] (or cut to that with `drop_tail`), then rank `r`
/// takes positions `r, r + world, r + 2 world, ...`.
pub fn training_rows(order: &[usize], rank: usize, world: usize, drop_tail: bool) -> Vec<usize> {
    assert!(rank < world, "rank {rank} of a world of {world}");
    let n = order.len();
    let total = samples_per_rank(n, world, drop_tail) * world;
    (rank..total).step_by(world).map(|p| order[p % n]).collect()
}

/// Rank `rank`'s evaluation rows of `order`: positions `rank, rank + world, ...`, unpadded, so
/// that over all ranks every sample is evaluated exactly once (the last shards may be one
/// shorter; metrics reduce sums and counts, so uneven shards are exact).
pub fn evaluation_rows(order: &[usize], rank: usize, world: usize) -> Vec<usize> {
    assert!(rank < world, "rank {rank} of a world of {world}");
    order.iter().copied().skip(rank).step_by(world).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_shards_cover_every_sample_once() {
        let order = [4, 0, 3, 1, 2];
        assert_eq!(evaluation_rows(&order, 0, 2), [4, 3, 2]);
        assert_eq!(evaluation_rows(&order, 1, 2), [0, 1]);
        assert_eq!(evaluation_rows(&order, 2, 3), [3]);
        let mut all: Vec<usize> = (0..3).flat_map(|r| evaluation_rows(&order, r, 3)).collect();
        all.sort();
        assert_eq!(all, [0, 1, 2, 3, 4]);
        assert!(evaluation_rows(&[], 1, 2).is_empty());
    }

    #[test]
    fn training_shards_of_an_empty_order_are_empty() {
        assert!(training_rows(&[], 0, 2, false).is_empty());
        assert_eq!(samples_per_rank(0, 3, true), 0);
    }
}
