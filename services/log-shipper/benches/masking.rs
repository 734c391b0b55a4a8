//! Benchmark: masking and durable writing throughput of the log path (`make bench`).
//! A 64 MiB log of realistic lines in 64 KiB chunks, with 20 masked values.

use std::time::Instant;

use flotilla_log_shipper::joblog::{JobLog, LogPolicy};
use flotilla_log_shipper::mask::Masker;

fn log_bytes(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    let mut i = 0u64;
    while out.len() < size {
        out.extend_from_slice(
            format!(
                "[{i:08}] compiling crate number {i} with token secret-value-{:02} and more text\n",
                i % 40
            )
            .as_bytes(),
        );
        i += 1;
    }
    out
}

fn main() {
    let secrets: Vec<String> = (0..20).map(|n| format!("secret-value-{n:02}")).collect();
    let data = log_bytes(64 << 20);
    let mb = data.len() as f64 / (1 << 20) as f64;

    let mut masker = Masker::new(secrets.iter());
    let mut out = Vec::with_capacity(data.len());
    let start = Instant::now();
    for chunk in data.chunks(64 * 1024) {
        masker.push(chunk, &mut out);
    }
    masker.finish(&mut out);
    let elapsed = start.elapsed();
    println!(
        "masking: {:.0} MiB/s ({mb:.0} MiB in {elapsed:?})",
        mb / elapsed.as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    let policy = LogPolicy {
        masked_values: secrets,
        output_limit_bytes: u64::MAX,
    };
    let mut log = JobLog::open(dir.path(), &policy).unwrap();
    let start = Instant::now();
    for (n, chunk) in data.chunks(64 * 1024).enumerate() {
        log.append((n * 64 * 1024) as u64, chunk).unwrap();
    }
    log.close().unwrap();
    let elapsed = start.elapsed();
    println!(
        "durable job log (mask + fsync per 64 KiB chunk): {:.0} MiB/s",
        mb / elapsed.as_secs_f64()
    );
}
