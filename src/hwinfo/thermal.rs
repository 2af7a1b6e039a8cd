//! The Mac's thermal state per trial (`NSProcessInfo.thermalState`, read on macOS only; `None`
//! elsewhere), so that a trial macOS slowed down to cool the chip is named rather than averaged in.
use serde::{Deserialize, Serialize};

/// Apple's four thermal states, in order of heat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThermalState {
    Nominal,
    /// Slightly raised; fans may spin up. No slowdown yet.
    Fair,
    /// macOS reduces performance to cool down.
    Serious,
    /// macOS reduces performance sharply.
    Critical,
}

impl ThermalState {
    /// From `NSProcessInfoThermalState`'s raw value; `None` for a value Apple has not defined.
    pub fn from_raw(raw: isize) -> Option<Self> {
        match raw {
            0 => Some(ThermalState::Nominal),
            1 => Some(ThermalState::Fair),
            2 => Some(ThermalState::Serious),
            3 => Some(ThermalState::Critical),
            _ => None,
        }
    }

    /// Whether macOS slows the machine down in this state (serious and critical).
    pub fn throttles(self) -> bool {
        self >= ThermalState::Serious
    }

    /// The state [`ThermalState::as_str`] names; `None` for anything else (an empty cell).
    pub fn from_name(name: &str) -> Option<Self> {
        (0..4).filter_map(ThermalState::from_raw).find(|s| s.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ThermalState::Nominal => "nominal",
            ThermalState::Fair => "fair",
            ThermalState::Serious => "serious",
            ThermalState::Critical => "critical",
        }
    }
}

/// The state now: on macOS from `NSProcessInfo`, elsewhere `None`.
pub fn current() -> Option<ThermalState> {
    #[cfg(target_os = "macos")]
    {
        ThermalState::from_raw(macos::raw())
    }
    #[cfg(not(target_os = "macos"))]
    {
        None
    }
}

/// The hotter of two readings (a trial's start and end), either of which may be missing.
pub fn hottest(a: Option<ThermalState>, b: Option<ThermalState>) -> Option<ThermalState> {
    a.max(b)
}

#[cfg(target_os = "macos")]
#[path = "thermal_macos.rs"]
mod macos;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_values_map_to_apples_states() {
        let states: Vec<_> = (-1..=4).map(ThermalState::from_raw).collect();
        use ThermalState::*;
        assert_eq!(states, vec![None, Some(Nominal), Some(Fair), Some(Serious), Some(Critical), None]);
        assert!(!Fair.throttles() && Serious.throttles() && Critical.throttles());
        assert_eq!(hottest(Some(Fair), Some(Serious)), Some(Serious));
        assert_eq!(hottest(None, Some(Fair)), Some(Fair));
        assert_eq!(hottest(None, None), None);
        assert_eq!(serde_json::to_string(&Critical).unwrap(), "\"critical\"");
        assert_eq!(ThermalState::from_name("serious"), Some(Serious));
        assert_eq!(ThermalState::from_name(""), None);
    }
}
