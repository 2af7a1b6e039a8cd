//! Closed sets of named values that a flag or a config key chooses from (`--device gpu`,
//! `--format csv`). Each enum lists its names and their help once, here in the library; the
//! command line turns them into clap's possible values (`cli::choice`), so the library does not
//! depend on clap.

/// An enum whose values are chosen by name.
pub trait Choice: Sized + Copy + PartialEq + 'static {
    /// Every value, in the order `--help` lists them.
    const ALL: &'static [Self];

    /// The name users type and reports print.
    fn name(self) -> &'static str;

    /// One line for `--help`.
    fn help(self) -> &'static str;

    /// Other names accepted for this value.
    fn aliases(self) -> &'static [&'static str];

    /// The value called `name` (or one of its aliases), if any.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == name || v.aliases().contains(&name))
    }
}

/// Implements [`Choice`] and `Display` (the name) for an enum from
/// `Variant => ("name", "help")` or `Variant => ("name", "help", ["alias", ...])` entries.
macro_rules! choice {
    ($ty:ty { $($variant:ident => ($name:literal, $help:literal $(, [$($alias:literal),*])?)),+ $(,)? }) => {
        impl $crate::choice::Choice for $ty {
            const ALL: &'static [Self] = &[$(<$ty>::$variant),+];
            fn name(self) -> &'static str {
                match self { $(<$ty>::$variant => $name),+ }
            }
            fn help(self) -> &'static str {
                match self { $(<$ty>::$variant => $help),+ }
            }
            fn aliases(self) -> &'static [&'static str] {
                match self { $(<$ty>::$variant => &[$($($alias),*)?]),+ }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::choice::Choice::name(*self))
            }
        }
    };
}
pub(crate) use choice;
