//! HR, NDCG and MRR at k from the rank of each user's target.

use serde_json::{Map, Value};

/// The cut-offs reported everywhere.
pub const KS: [usize; 4] = [5, 10, 20, 50];

/// Ranking metrics averaged over users.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    /// The cut-offs, ascending.
    pub ks: Vec<usize>,
    /// Hit ratio (= recall with one target) at each k: `[rank <= k]`.
    pub hr: Vec<f64>,
    /// `1 / log2(rank + 1)` if `rank <= k`.
    pub ndcg: Vec<f64>,
    /// `1 / rank` if `rank <= k`.
    pub mrr: Vec<f64>,
    /// How many users were averaged.
    pub users: usize,
}

impl Metrics {
    /// The metrics of 1-based ranks at [`KS`].
    pub fn from_ranks(ranks: &[usize]) -> Self {
        let ks = KS.to_vec();
        let n = ranks.len().max(1) as f64;
        let mut m = Metrics {
            hr: vec![0.0; ks.len()],
            ndcg: vec![0.0; ks.len()],
            mrr: vec![0.0; ks.len()],
            ks,
            users: ranks.len(),
        };
        for &r in ranks {
            for (i, &k) in m.ks.iter().enumerate() {
                if r <= k {
                    m.hr[i] += 1.0;
                    m.ndcg[i] += 1.0 / ((r + 1) as f64).log2();
                    m.mrr[i] += 1.0 / r as f64;
                }
            }
        }
        for v in
            m.hr.iter_mut()
                .chain(m.ndcg.iter_mut())
                .chain(m.mrr.iter_mut())
        {
            *v /= n;
        }
        m
    }

    /// A metric by name: `hr@10`, `recall@10` (the same), `ndcg@20`, `mrr@10`.
    pub fn get(&self, name: &str) -> Option<f64> {
        let (kind, k) = name.split_once('@')?;
        let i = self.ks.iter().position(|&x| Some(x) == k.parse().ok())?;
        match kind {
            "hr" | "recall" => Some(self.hr[i]),
            "ndcg" => Some(self.ndcg[i]),
            "mrr" => Some(self.mrr[i]),
            _ => None,
        }
    }

    /// `{"hr@5": .., "ndcg@5": .., "mrr@5": .., "hr@10": ..}`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (i, k) in self.ks.iter().enumerate() {
            m.insert(format!("hr@{k}"), Value::from(self.hr[i]));
            m.insert(format!("ndcg@{k}"), Value::from(self.ndcg[i]));
            m.insert(format!("mrr@{k}"), Value::from(self.mrr[i]));
        }
        Value::Object(m)
    }

    /// A plain-text table, one row per metric, one column per k.
    pub fn table(&self, title: &str) -> String {
        let mut s = format!("{title:<8}");
        for k in &self.ks {
            s += &format!("{:>10}", format!("@{k}"));
        }
        s.push('\n');
        for (name, v) in [("HR", &self.hr), ("NDCG", &self.ndcg), ("MRR", &self.mrr)] {
            s += &format!("{name:<8}");
            for x in v {
                s += &format!("{x:>10.4}");
            }
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_of_known_ranks() {
        let m = Metrics::from_ranks(&[1, 3, 11, 100]);
        assert_eq!(m.get("hr@5"), Some(0.5));
        assert_eq!(m.get("hr@20"), Some(0.75));
        assert!((m.get("mrr@5").unwrap() - (1.0 + 1.0 / 3.0) / 4.0).abs() < 1e-12);
        assert!((m.get("ndcg@5").unwrap() - (1.0 + 0.5) / 4.0).abs() < 1e-12);
        assert_eq!(m.get("recall@50"), m.get("hr@50"));
        assert_eq!(m.to_json()["hr@50"], 0.75);
    }
}
