//! A setting declared once. The macro `declare_settings!` turns one entry per setting (its rustdoc,
//! key, type, [`Scope`], default and check) into everything that needs it: the field of
//! the resolved [`TrainConfig`](crate::TrainConfig), the optional field of the
//! [`PartialConfig`](crate::PartialConfig) that a file or the flags fill, its TOML key and
//! place, its CLI flag with a help that states the default computed from the code, and its
//! check. The CLI builds its `run` flags from [`SETTINGS`](crate::SETTINGS); the docs test
//! that docs/config.md names every key.
//!
//! The file layout: run settings at the top level, the model's name and its own settings in
//! a `[model]` section. A run writes only the settings its model uses:
//!
//! ```toml
//! dataset = "beauty"
//! epochs = 100
//! batch_size = 256
//!
//! [model]
//! name = "caser"
//! dropout = 0.4
//! max_len = 5
//! loss = "ce"
//! ```
//!
//! The flat layout of earlier versions (`model = "caser"` and every key at the top level)
//! is read too.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::{EvalProtocol, LossKind, ModelKind, Preset, Schedule};

/// What a default depends on: the model and the paper's per-dataset preset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefaultsFor {
    /// The model.
    pub model: ModelKind,
    /// The dataset's preset.
    pub preset: Preset,
}

/// Whom a setting belongs to, which decides where it sits in a file and which models
/// accept it.
#[derive(Clone, Copy, Debug)]
pub enum Scope {
    /// The training run, whatever the model: a top-level key and a flag.
    Run,
    /// Written by a run at the top level, never given as a flag (the dataset's hash).
    Stored,
    /// The listed models: a key of the `[model]` section and a flag that another model
    /// refuses.
    Models(&'static [ModelKind]),
}

impl Scope {
    /// Whether `model` uses the setting.
    pub fn used_by(self, model: ModelKind) -> bool {
        match self {
            Scope::Models(models) => models.contains(&model),
            Scope::Run | Scope::Stored => true,
        }
    }
}

/// One setting as the CLI, the file reader and the docs see it.
#[derive(Debug)]
pub struct Setting {
    /// The TOML key (`batch_size`).
    pub key: &'static str,
    /// Its rustdoc.
    pub doc: &'static str,
    /// Whom it belongs to.
    pub scope: Scope,
    /// A yes/no switch (a flag without a value).
    pub switch: bool,
    /// Its default for a model and preset.
    pub default: fn(DefaultsFor) -> toml::Value,
}

/// The CLI flag of a key (`batch_size` -> `--batch-size`).
pub fn flag_of(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// A setting's value as the help and the error messages print it (`0.001`, `three-step`).
pub fn display(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        // `0` rather than TOML's `0.0`.
        toml::Value::Float(f) => f.to_string(),
        v => v.to_string(),
    }
}

impl Setting {
    /// The CLI flag (`--batch-size`).
    pub fn flag(&self) -> String {
        flag_of(self.key)
    }

    /// The models that use it.
    pub fn models(&self) -> Vec<ModelKind> {
        ModelKind::ALL
            .into_iter()
            .filter(|&m| self.scope.used_by(m))
            .collect()
    }

    /// The default as the help states it: one value, or the value most models have and the
    /// exceptions, or the value of each model; a value that depends on the preset is given
    /// for each preset.
    pub fn default_help(&self) -> String {
        let per_model: Vec<(ModelKind, String)> = self
            .models()
            .into_iter()
            .map(|model| {
                let by_preset: Vec<String> = Preset::ALL
                    .iter()
                    .map(|&preset| display(&(self.default)(DefaultsFor { model, preset })))
                    .collect();
                let text = if by_preset.iter().all(|v| *v == by_preset[0]) {
                    by_preset[0].clone()
                } else {
                    let each: Vec<String> = Preset::ALL
                        .iter()
                        .zip(&by_preset)
                        .map(|(p, v)| format!("{} {v}", p.name()))
                        .collect();
                    format!("by preset {}", each.join(", "))
                };
                (model, text)
            })
            .collect();
        let most = per_model
            .iter()
            .max_by_key(|(_, t)| per_model.iter().filter(|(_, u)| u == t).count())
            .map(|(_, t)| t.clone())
            .unwrap_or_default();
        let count = per_model.iter().filter(|(_, t)| *t == most).count();
        if count == per_model.len() {
            return most;
        }
        let listed = |keep: &dyn Fn(&String) -> bool| -> Vec<String> {
            per_model
                .iter()
                .filter(|(_, t)| keep(t))
                .map(|(m, t)| format!("{}: {t}", m.name()))
                .collect()
        };
        if 2 * count > per_model.len() {
            format!("{most}; {}", listed(&|t| *t != most).join(", "))
        } else {
            listed(&|_| true).join("; ")
        }
    }

    /// The rustdoc on one line, its links as plain code.
    pub fn meaning(&self) -> String {
        let text = self.doc.split_whitespace().collect::<Vec<_>>().join(" ");
        text.replace("[`", "`").replace("`]", "`")
    }

    /// The models that use it, where that is not every model (`caser, mclrec`).
    pub fn models_note(&self) -> Option<String> {
        let models: Vec<&str> = self.models().iter().map(|m| m.name()).collect();
        (models.len() < ModelKind::ALL.len()).then(|| models.join(", "))
    }

    /// The flag's help: the rustdoc, the models that use it, the default.
    pub fn help(&self) -> String {
        let mut help = self.meaning().trim_end_matches('.').to_string();
        if let Some(models) = self.models_note() {
            help += &format!(" [models: {models}]");
        }
        let default = self.default_help();
        if !default.is_empty() && !self.switch {
            help += &format!(" [default: {default}]");
        }
        help
    }
}

/// A type a setting can hold: read from a flag's text or a TOML value, shown in the help.
pub trait SettingValue: Sized + Clone + Serialize + DeserializeOwned {
    /// A switch takes no value on the command line.
    const SWITCH: bool = false;

    /// Parses a flag's text.
    fn from_text(text: &str) -> Result<Self, String>;

    /// Reads a TOML value.
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        value.clone().try_into().map_err(|e: toml::de::Error| {
            format!("{} ({value})", e.message().trim().replace('\n', " "))
        })
    }

    /// The TOML value.
    fn to_toml(&self) -> toml::Value {
        toml::Value::try_from(self).expect("a setting is a TOML value")
    }

    /// The value as the help and the error messages print it.
    fn show(&self) -> String {
        display(&self.to_toml())
    }
}

impl SettingValue for usize {
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|_| format!("`{text}` is not a whole number >= 0"))
    }
}

impl SettingValue for u64 {
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|_| format!("`{text}` is not a whole number >= 0"))
    }
}

impl SettingValue for f64 {
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|_| format!("`{text}` is not a number"))
    }

    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for bool {
    const SWITCH: bool = true;
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|_| format!("`{text}` is not true or false"))
    }
}

impl SettingValue for String {
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
}

/// The enums read their names with their `FromStr`, whose message lists the choices.
macro_rules! named_values {
    ($($t:ty),+) => {$(
        impl SettingValue for $t {
            fn from_text(text: &str) -> Result<Self, String> {
                text.parse()
            }

            fn from_toml(value: &toml::Value) -> Result<Self, String> {
                match value.as_str() {
                    Some(text) => text.parse(),
                    None => Err(format!("`{value}` is not a name")),
                }
            }
        }
    )+};
}
named_values!(ModelKind, Schedule, LossKind, EvalProtocol);

/// Declares the settings: for each, its rustdoc, then
/// `key: Type, scope, default |d| ..., check |v| ...;` where the default is a function of
/// [`DefaultsFor`] and the check returns the message's tail (`must be ...`).
macro_rules! declare_settings {
    ($(
        $(#[doc = $doc:literal])+
        $key:ident: $ty:ty, $scope:expr, default $default:expr, check $check:expr;
    )+) => {
        /// A fully resolved training configuration: every setting of [`SETTINGS`] (written
        /// to the run's `config.toml` in the layout of [`crate::settings`]).
        #[derive(Clone, Debug, PartialEq)]
        pub struct TrainConfig {
            $( $(#[doc = $doc])+ pub $key: $ty, )+
        }

        /// Settings as a file or the flags give them: each one optional, resolved by
        /// [`PartialConfig::resolve`].
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct PartialConfig {
            $( $(#[doc = $doc])+ pub $key: Option<$ty>, )+
        }

        /// Every setting, in the order of `config.toml`.
        pub static SETTINGS: &[$crate::settings::Setting] = &[$(
            $crate::settings::Setting {
                key: stringify!($key),
                doc: concat!($($doc, "\n"),+),
                scope: $scope,
                switch: <$ty as $crate::settings::SettingValue>::SWITCH,
                default: |d| {
                    let default: fn(&$crate::settings::DefaultsFor) -> $ty = $default;
                    $crate::settings::SettingValue::to_toml(&default(&d))
                },
            },
        )+];

        impl PartialConfig {
            /// Sets `key` from a flag's text.
            pub fn set_text(&mut self, key: &str, text: &str) -> Result<(), String> {
                match key {
                    $( stringify!($key) => {
                        self.$key = Some($crate::settings::SettingValue::from_text(text)?);
                    } )+
                    _ => return Err(format!("`{key}` is not a setting")),
                }
                Ok(())
            }

            /// Sets `key` from a TOML value.
            pub fn set_toml(&mut self, key: &str, value: &toml::Value) -> Result<(), String> {
                match key {
                    $( stringify!($key) => {
                        self.$key = Some($crate::settings::SettingValue::from_toml(value)?);
                    } )+
                    _ => return Err(format!("`{key}` is not a setting")),
                }
                Ok(())
            }

            /// The settings given, with their values in TOML.
            pub fn given(&self) -> Vec<(&'static str, toml::Value)> {
                let mut given = Vec::new();
                $( if let Some(v) = &self.$key {
                    given.push((stringify!($key), $crate::settings::SettingValue::to_toml(v)));
                } )+
                given
            }

            /// These settings, with `base`'s where these have none.
            pub fn or(self, base: PartialConfig) -> PartialConfig {
                PartialConfig { $( $key: self.$key.or(base.$key), )+ }
            }

            /// Every setting given or else its default for `defaults`, unchecked.
            pub fn with_defaults(self, defaults: &$crate::settings::DefaultsFor) -> TrainConfig {
                TrainConfig { $(
                    $key: self.$key.unwrap_or_else(|| {
                        let default: fn(&$crate::settings::DefaultsFor) -> $ty = $default;
                        default(defaults)
                    }),
                )+ }
            }
        }

        impl TrainConfig {
            /// Every setting as `(key, TOML value)`, in the order of [`SETTINGS`].
            pub fn entries(&self) -> Vec<(&'static str, toml::Value)> {
                vec![$(
                    (stringify!($key), $crate::settings::SettingValue::to_toml(&self.$key)),
                )+]
            }

            /// Each setting's own check; the message names the setting as its flag does.
            fn check_each(&self) -> Result<(), String> {
                $(
                    let check: fn(&$ty) -> Result<(), String> = $check;
                    check(&self.$key)
                        .map_err(|e| format!("{} {e}", stringify!($key).replace('_', "-")))?;
                )+
                Ok(())
            }
        }
    };
}
pub(crate) use declare_settings;

/// The line of `text` (1-based) where `key` is set, in `[section]` or at the top level.
pub fn line_of(text: &str, section: Option<&str>, key: &str) -> Option<usize> {
    let mut current: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            current = Some(header.trim_end_matches(']').trim().to_string());
            continue;
        }
        let Some((k, _)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim().trim_matches('"');
        if k == key && current.as_deref() == section {
            return Some(i + 1);
        }
        // A dotted key (`model.name = ...`) at the top level.
        if current.is_none() && section.is_some_and(|s| k == format!("{s}.{key}")) {
            return Some(i + 1);
        }
    }
    None
}

/// The settings as a markdown table (key, flag, models, default, meaning): docs/config.md
/// holds it, and a test keeps the two the same.
pub fn markdown_table() -> String {
    let mut out =
        String::from("| key | flag | models | default | meaning |\n|---|---|---|---|---|\n");
    for s in crate::SETTINGS {
        let flag = match s.scope {
            Scope::Stored => "(written by a run)".to_string(),
            _ => format!("`{}`", s.flag()),
        };
        let models = s.models_note().unwrap_or_else(|| "all".to_string());
        let default = match s.default_help() {
            d if d.is_empty() => "none".to_string(),
            d => d,
        };
        let meaning = s.meaning();
        out += &format!(
            "| `{}` | {flag} | {models} | {default} | {} |\n",
            s.key,
            meaning.replace('|', "\\|")
        );
    }
    out
}
