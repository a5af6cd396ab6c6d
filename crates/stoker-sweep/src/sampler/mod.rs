//! The registered samplers: `grid`, `random` and `tpe`.

pub mod grid;
pub mod normal;
pub mod parzen;
pub mod random;
pub mod tpe;

/// The seed of trial `number`'s draws: the sampler's seed and the number, mixed so that no two
/// pairs share a stream. (`stoker::rng::derive_seed` would not do: it xors the number into an
/// unmixed state, so `(seed, n)` and `(seed + 1, m)` collide for small `n ^ m`.)
pub fn trial_seed(seed: u64, number: usize) -> u64 {
    let mut state = seed;
    let mut mixed = stoker::rng::splitmix64(&mut state) ^ number as u64;
    stoker::rng::splitmix64(&mut mixed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn neighbouring_seeds_share_no_trial_stream() {
        let mut seen = std::collections::HashSet::new();
        for seed in 0..64 {
            for number in 0..256 {
                assert!(
                    seen.insert(super::trial_seed(seed, number)),
                    "{seed} {number}"
                );
            }
        }
    }
}
