//! `bench ab`: two settings compared over interleaved trials; the difference of
//! their means with a 95 % confidence interval (Welch's t), and whether it is
//! significant (the interval excludes zero).

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub a_mean: f64,
    pub b_mean: f64,
    pub a_stddev: f64,
    pub b_stddev: f64,
    pub trials: usize,
    /// b − a.
    pub difference: f64,
    pub ci95_low: f64,
    pub ci95_high: f64,
    /// (b − a) / a, in percent.
    pub difference_percent: Option<f64>,
    pub significant: bool,
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len().max(1) as f64
}

fn variance(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let m = mean(x);
    x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64
}

/// Student's t at 97.5 % for `df` degrees of freedom (two-sided 95 %).
fn t_975(df: f64) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    if !df.is_finite() || df >= 30.0 {
        return 1.96;
    }
    // Rounded down: the wider interval.
    TABLE[(df.floor().max(1.0) as usize) - 1]
}

/// A against B; None with fewer than two trials of each.
pub fn compare(a: &[f64], b: &[f64]) -> Option<Comparison> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (ma, mb) = (mean(a), mean(b));
    let (va, vb) = (variance(a) / a.len() as f64, variance(b) / b.len() as f64);
    let se = (va + vb).sqrt();
    // Welch–Satterthwaite degrees of freedom.
    let df = if va + vb > 0.0 {
        (va + vb).powi(2) / (va.powi(2) / (a.len() - 1) as f64 + vb.powi(2) / (b.len() - 1) as f64)
    } else {
        f64::INFINITY
    };
    let d = mb - ma;
    let half = t_975(df) * se;
    Some(Comparison {
        a_mean: ma,
        b_mean: mb,
        a_stddev: variance(a).sqrt(),
        b_stddev: variance(b).sqrt(),
        trials: a.len().min(b.len()),
        difference: d,
        ci95_low: d - half,
        ci95_high: d + half,
        difference_percent: (ma != 0.0).then(|| d / ma.abs() * 100.0),
        significant: d - half > 0.0 || d + half < 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_interval_matches_a_worked_example() {
        // Two samples with a clear difference, and two drawn from the same values.
        let a = [10.0, 11.0, 9.5, 10.5, 10.2];
        let b = [12.0, 12.5, 11.8, 12.2, 12.4];
        let c = compare(&a, &b).unwrap();
        assert!(c.significant);
        // means 10.24 and 12.18; standard errors² 0.0626 and 0.0164; Welch df 5.96,
        // taken as 5: t = 2.571, half-width 0.7225.
        assert!((c.difference - 1.94).abs() < 1e-9);
        assert!(
            (c.ci95_low - 1.2175).abs() < 0.001 && (c.ci95_high - 2.6625).abs() < 0.001,
            "{c:?}"
        );
        let same = compare(&a, &[10.5, 9.5, 10.2, 11.0, 10.0]).unwrap();
        assert!(!same.significant, "{same:?}");
        assert!(compare(&[1.0], &[2.0, 3.0]).is_none());
        // Identical trials: no spread, a zero-width interval.
        let flat = compare(&[1.0, 1.0], &[2.0, 2.0]).unwrap();
        assert!(flat.significant && flat.ci95_low == 1.0);
    }
}
