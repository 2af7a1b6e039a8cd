//! The Mac's one Objective-C call: `NSProcessInfo.processInfo.thermalState`, its raw value.
//! Self-contained so that it can be type-checked alone for `aarch64-apple-darwin` from Linux.

/// `NSProcessInfoThermalState`: 0 nominal, 1 fair, 2 serious, 3 critical.
pub fn raw() -> isize {
    objc2_foundation::NSProcessInfo::processInfo().thermalState().0
}
