//! Each rank's training rows against torch's `DistributedSampler` (shuffle off, since stoker
//! shuffles the epoch's order itself): `fixtures/distributed_sampler.json`, made by
//! `fixtures/make_distributed_sampler_fixture.py` with torch 2.11. 80 cases: 1 to 31 samples,
//! 1 to 8 ranks, with and without `drop_last`.

use stoker_dataset::shard::{samples_per_rank, training_rows};

#[test]
fn training_rows_follow_torch_distributed_sampler() {
    let text = include_str!("fixtures/distributed_sampler.json");
    let fixture: serde_json::Value = serde_json::from_str(text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 80);
    for case in cases {
        let n = case["samples"].as_u64().unwrap() as usize;
        let world = case["world"].as_u64().unwrap() as usize;
        let drop_last = case["drop_last"].as_bool().unwrap();
        let identity: Vec<usize> = (0..n).collect();
        // A shuffled epoch order: the rows are the order's entries at torch's positions.
        let shuffled: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % n).collect();
        for (rank, expected) in case["ranks"].as_array().unwrap().iter().enumerate() {
            let expected: Vec<usize> = expected
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            let label = format!("{n} samples, rank {rank} of {world}, drop_last {drop_last}");
            assert_eq!(
                training_rows(&identity, rank, world, drop_last),
                expected,
                "{label}"
            );
            let mapped: Vec<usize> = expected.iter().map(|&p| shuffled[p]).collect();
            assert_eq!(
                training_rows(&shuffled, rank, world, drop_last),
                mapped,
                "{label}"
            );
            assert_eq!(
                samples_per_rank(n, world, drop_last),
                expected.len(),
                "{label}"
            );
        }
    }
}
