//! [`Pricing`]: what a response's usage costs, per model family.

use super::usage::Usage;

/// The price of one model family, in US dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Price {
    /// Input tokens (not from the cache).
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Tokens written to the prompt cache (`cache_creation_input_tokens`).
    pub cache_write: f64,
    /// Tokens read from the prompt cache (`cache_read_input_tokens`).
    pub cache_read: f64,
}

impl Price {
    /// A price: `input`, `output`, `cache_write` and `cache_read` dollars per million tokens.
    pub const fn new(input: f64, output: f64, cache_write: f64, cache_read: f64) -> Price {
        Price {
            input,
            output,
            cache_write,
            cache_read,
        }
    }

    /// What `usage` costs at this price, in dollars.
    pub(super) fn cost(&self, usage: &Usage) -> f64 {
        (usage.input as f64 * self.input
            + usage.output as f64 * self.output
            + usage.cache_write as f64 * self.cache_write
            + usage.cache_read as f64 * self.cache_read)
            / 1_000_000.0
    }
}

/// What usage costs, per model: a table of model families (matched as substrings of the
/// model's name, case-insensitively; the longest family that matches wins) and a fallback
/// price for a model no family matches.
///
/// The default table holds Anthropic's list prices (per million tokens; cache writes at the
/// 5-minute rate) at the time of writing:
///
/// | family      | input | output | cache write | cache read |
/// |-------------|------:|-------:|------------:|-----------:|
/// | `opus`      | 15    | 75     | 18.75       | 1.50       |
/// | `opus-4-5`  | 5     | 25     | 6.25        | 0.50       |
/// | `sonnet`    | 3     | 15     | 3.75        | 0.30       |
/// | `haiku`     | 1     | 5      | 1.25        | 0.10       |
/// | `3-5-haiku` | 0.80  | 4      | 1           | 0.08       |
/// | `3-haiku`   | 0.25  | 1.25   | 0.30        | 0.03       |
///
/// The default fallback is the `opus` price, the highest: a model the table does not know is
/// never counted as cheaper than it may be. Prices change: set the ones you pay with
/// [`set`](Self::set) and [`fallback`](Self::fallback).
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct Pricing {
    families: Vec<(String, Price)>,
    fallback: Price,
}

const OPUS: Price = Price::new(15.0, 75.0, 18.75, 1.5);

impl Default for Pricing {
    fn default() -> Self {
        Pricing {
            families: vec![
                ("opus".into(), OPUS),
                ("opus-4-5".into(), Price::new(5.0, 25.0, 6.25, 0.5)),
                ("sonnet".into(), Price::new(3.0, 15.0, 3.75, 0.3)),
                ("haiku".into(), Price::new(1.0, 5.0, 1.25, 0.1)),
                ("3-5-haiku".into(), Price::new(0.8, 4.0, 1.0, 0.08)),
                ("3-haiku".into(), Price::new(0.25, 1.25, 0.3, 0.03)),
            ],
            fallback: OPUS,
        }
    }
}

impl Pricing {
    /// The default table (see above).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty table: every model costs `fallback`.
    pub fn flat(fallback: Price) -> Self {
        Pricing {
            families: Vec::new(),
            fallback,
        }
    }

    /// Sets the price of the models whose name contains `family` (replacing the table's
    /// entry for that family, or adding one).
    pub fn set(mut self, family: impl Into<String>, price: Price) -> Self {
        let family = family.into().to_ascii_lowercase();
        match self.families.iter_mut().find(|(f, _)| *f == family) {
            Some((_, p)) => *p = price,
            None => self.families.push((family, price)),
        }
        self
    }

    /// The price of a model no family matches (default: the `opus` price).
    pub fn fallback(mut self, price: Price) -> Self {
        self.fallback = price;
        self
    }

    /// The price of `model`: its longest matching family's, else the fallback.
    pub fn price_of(&self, model: &str) -> Price {
        let model = model.to_ascii_lowercase();
        self.families
            .iter()
            .filter(|(family, _)| model.contains(family.as_str()))
            .max_by_key(|(family, _)| family.len())
            .map_or(self.fallback, |(_, price)| *price)
    }

    /// What `usage` of `model` costs, in dollars.
    pub(super) fn cost(&self, model: &str, usage: &Usage) -> f64 {
        self.price_of(model).cost(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_match_their_longest_family_and_unknown_ones_the_fallback() {
        let p = Pricing::default();
        assert_eq!(p.price_of("claude-sonnet-4-5-20250929").input, 3.0);
        assert_eq!(p.price_of("claude-opus-4-1-20250805").output, 75.0);
        assert_eq!(p.price_of("claude-opus-4-5-20251101").output, 25.0);
        assert_eq!(p.price_of("claude-3-5-haiku-20241022").input, 0.8);
        assert_eq!(p.price_of("claude-haiku-4-5").input, 1.0);
        assert_eq!(p.price_of("CLAUDE-3-HAIKU-20240307").input, 0.25);
        assert_eq!(p.price_of("some-new-model"), OPUS);
        let custom = Pricing::default()
            .set("Sonnet", Price::new(1.0, 2.0, 3.0, 4.0))
            .set("claude-test", Price::new(10.0, 0.0, 0.0, 0.0))
            .fallback(Price::new(0.0, 0.0, 0.0, 0.0));
        assert_eq!(custom.price_of("claude-sonnet-4").output, 2.0);
        assert_eq!(custom.price_of("claude-test-model").input, 10.0);
        assert_eq!(custom.price_of("mystery").input, 0.0);
    }

    #[test]
    fn a_cost_sums_each_kind_of_token_at_its_rate() {
        let usage = Usage {
            input: 1_000_000,
            output: 2_000_000,
            cache_write: 100_000,
            cache_read: 1_000_000,
        };
        let cost = Pricing::default().cost("claude-sonnet-4", &usage);
        assert!((cost - (3.0 + 30.0 + 0.375 + 0.3)).abs() < 1e-9, "{cost}");
        assert_eq!(Pricing::flat(OPUS).cost("x", &Usage::default()), 0.0);
    }
}
