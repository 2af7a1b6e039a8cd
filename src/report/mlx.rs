//! Which MLX a record ran on (its version and the wheel's build tag), and how the views of merged
//! results tell MLX builds apart: results of two builds are kept apart and labelled by theirs, and
//! results of one build carry no label at all (so single-build tables, series and benchmark names
//! stay as they were).
use crate::bench::RunContext;

/// `MLX 0.32.4 (manylinux_2_35_x86_64)`: a version with its build, as context lines name it.
pub fn mlx_description(version: &str, build: &str) -> String {
    format!("MLX {version} ({build})")
}

/// The distinct MLX builds (version, build tag) of some records, in first-seen order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MlxBuilds(Vec<(String, String)>);

impl MlxBuilds {
    pub fn of<'a>(contexts: impl IntoIterator<Item = &'a RunContext>) -> Self {
        let mut builds: Vec<(String, String)> = Vec::new();
        for c in contexts {
            if !builds.iter().any(|(version, build)| *version == c.mlx_version && *build == c.mlx_build) {
                builds.push((c.mlx_version.clone(), c.mlx_build.clone()));
            }
        }
        MlxBuilds(builds)
    }

    /// Each (version, build), in first-seen order.
    pub fn list(&self) -> &[(String, String)] {
        &self.0
    }

    /// Whether the records ran on more than one MLX build, so that their views label them.
    pub fn varies(&self) -> bool {
        self.0.len() > 1
    }

    /// What tells `context`'s MLX from the others': `None` when all records share one build, else
    /// the version (`0.32.4`), with the build when another build of that version is among them
    /// (`0.32.2 (macosx_26_0_arm64)`: only the macOS 26 wheel has the M5 kernels).
    pub fn name(&self, context: &RunContext) -> Option<String> {
        self.parts(context).map(|(version, build)| match build {
            Some(build) => format!("{version} ({build})"),
            None => version.to_string(),
        })
    }

    /// [`Self::name`] as a series or row label: `MLX 0.32.4`.
    pub fn label(&self, context: &RunContext) -> Option<String> {
        self.name(context).map(|name| format!("MLX {name}"))
    }

    /// [`Self::name`] as the last part of a benchmark name: `mlx0.32.4`, `mlx0.32.2-macosx_26_0_arm64`.
    pub fn slug(&self, context: &RunContext) -> Option<String> {
        self.parts(context).map(|(version, build)| match build {
            Some(build) => format!("mlx{version}-{build}"),
            None => format!("mlx{version}"),
        })
    }

    /// The version, and the build when the version alone does not tell it from another.
    fn parts<'a>(&self, context: &'a RunContext) -> Option<(&'a str, Option<&'a str>)> {
        if !self.varies() {
            return None;
        }
        let builds_of_version = self.0.iter().filter(|(version, _)| *version == context.mlx_version).count();
        Some((&context.mlx_version, (builds_of_version > 1).then_some(context.mlx_build.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(mlx_version: &str, mlx_build: &str) -> RunContext {
        RunContext { device: "gpu".into(), backend: "cuda".into(), mlx_version: mlx_version.into(), mlx_build: mlx_build.into(), ..RunContext::for_tests() }
    }

    #[test]
    fn names_say_the_version_and_the_build_only_where_the_version_does_not_tell() {
        let (a, b, c) = (context("0.32.2", "macosx_14_0_arm64"), context("0.32.2", "macosx_26_0_arm64"), context("0.32.4", "macosx_26_0_arm64"));
        let one = MlxBuilds::of([&a, &a]);
        assert!(!one.varies());
        assert_eq!((one.name(&a), one.label(&a), one.slug(&a)), (None, None, None));

        let versions = MlxBuilds::of([&a, &c, &a]);
        assert_eq!(versions.list().len(), 2);
        assert_eq!(versions.label(&a).as_deref(), Some("MLX 0.32.2"));
        assert_eq!(versions.slug(&c).as_deref(), Some("mlx0.32.4"));

        let all = MlxBuilds::of([&a, &b, &c]);
        assert_eq!(all.name(&a).as_deref(), Some("0.32.2 (macosx_14_0_arm64)"));
        assert_eq!(all.slug(&b).as_deref(), Some("mlx0.32.2-macosx_26_0_arm64"));
        assert_eq!(all.label(&c).as_deref(), Some("MLX 0.32.4"), "0.32.4 has one build here");
        assert_eq!(mlx_description("0.32.4", "local"), "MLX 0.32.4 (local)");
    }
}
