//! The one hyperparameter style of the ndarray crates (linfa's `ParamGuard`): an *unchecked* parameter set,
//! built with chained setters, becomes the *checked* type that runs only through [`ParamGuard::check`], so
//! every value is validated once, before any work, and never again per call.
//!
//! Vocabulary, the same in every crate: `validate(&self) -> Result<()>` checks without consuming (also on
//! types that have no checked twin, such as a detection method or a pipeline); `check(self) -> Result<Checked>`
//! validates and converts. Burn modules use Burn's `Config` + `init(&device)` instead.
//!
//! ```
//! use cadet_core::params::ParamGuard;
//!
//! /// Unchecked.
//! struct WindowParams { width: usize }
//! /// Checked: only `check` makes one.
//! struct Window { width: usize }
//!
//! impl ParamGuard for WindowParams {
//!     type Checked = Window;
//!     type Error = cadet_core::Error;
//!     fn validate(&self) -> cadet_core::Result<()> {
//!         if self.width == 0 {
//!             return Err(cadet_core::Error::InvalidParameter { name: "width", reason: "at least 1".into() });
//!         }
//!         Ok(())
//!     }
//!     fn check(self) -> cadet_core::Result<Window> {
//!         self.validate()?;
//!         Ok(Window { width: self.width })
//!     }
//! }
//!
//! assert!(WindowParams { width: 0 }.check().is_err());
//! assert_eq!(WindowParams { width: 3 }.check().unwrap().width, 3);
//! ```

/// An unchecked parameter set and its checked twin (see the [module](self) documentation).
pub trait ParamGuard: Sized {
    /// The validated type that does the work.
    type Checked;
    /// The crate's error type.
    type Error: std::error::Error;

    /// Checks every value without consuming the parameters.
    fn validate(&self) -> Result<(), Self::Error>;

    /// Validates and converts into the checked type.
    fn check(self) -> Result<Self::Checked, Self::Error>;
}

/// Implements [`ParamGuard`] for an unchecked parameter type through its inherent `validate(&self)` and
/// `check(self)`, which the crates keep so that calling them needs no import:
/// `cadet_core::param_guard!(PermutationTestParams => PermutationTest, Error);`.
#[macro_export]
macro_rules! param_guard {
    ($params:ty => $checked:ty, $error:ty) => {
        impl $crate::params::ParamGuard for $params {
            type Checked = $checked;
            type Error = $error;
            fn validate(&self) -> ::std::result::Result<(), $error> {
                <$params>::validate(self)
            }
            fn check(self) -> ::std::result::Result<$checked, $error> {
                <$params>::check(self)
            }
        }
    };
}
