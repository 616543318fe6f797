//! The phases of a job, in the order they run, and which of them a job has.
//!
//! A phase's [`Phase::name`] is what `ferry_meta.job_phase` records once it is done (and what
//! [`ferry_core::progress::ProgressEvent::PhaseStarted`] carries); a rerun of the job skips the
//! phases recorded there. The names are stored on targets: they never change.

/// One phase of a job (see [`crate::runner`] for what each does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Pre-data structure: databases, tables (without secondary indexes), views, routines.
    Structure,
    /// The full load of the rows.
    FullData,
    /// Post-data structure: secondary indexes, foreign keys, triggers and events (unless they
    /// wait for the end of a replay).
    PostData,
    /// A full-only job whose chunks were read at different binlog positions (lock-free, or a
    /// resumed load) replays the binlog between them before it is consistent.
    LoadWindow,
    /// MigrateType 3: the incremental replay until completed (cut-over).
    Incremental,
    /// ConsistencyType 2, 3 or 4: the comparison after everything else.
    Verification,
}

impl Phase {
    /// Every phase, in the order a job runs them.
    pub const ALL: [Phase; 6] = [
        Phase::Structure,
        Phase::FullData,
        Phase::PostData,
        Phase::LoadWindow,
        Phase::Incremental,
        Phase::Verification,
    ];

    /// The name recorded in `ferry_meta.job_phase` and reported in progress events.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Structure => "structure",
            Phase::FullData => "full_data",
            Phase::PostData => "post_data",
            Phase::LoadWindow => "load_window",
            Phase::Incremental => "incremental",
            Phase::Verification => "verification",
        }
    }

    /// Whether the phase is announced by `PhaseStarted`/`PhaseFinished` events (the load window
    /// is part of the full load as users see it, and is not).
    pub fn announced(self) -> bool {
        self != Phase::LoadWindow
    }

    /// The phases a job has: with or without data (MigrateType 1 has none), with or without the
    /// incremental replay (MigrateType 3), with or without a verification.
    pub fn for_job(wants_data: bool, incremental: bool, verifies: bool) -> Vec<Phase> {
        Phase::ALL
            .into_iter()
            .filter(|p| match p {
                Phase::Structure | Phase::PostData => true,
                Phase::FullData => wants_data,
                Phase::LoadWindow => wants_data && !incremental,
                Phase::Incremental => wants_data && incremental,
                Phase::Verification => verifies,
            })
            .collect()
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_recorded_ones() {
        let names: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(
            names,
            [
                "structure",
                "full_data",
                "post_data",
                "load_window",
                "incremental",
                "verification"
            ]
        );
    }

    #[test]
    fn each_migrate_type_has_its_phases() {
        use Phase::*;
        assert_eq!(Phase::for_job(false, false, false), [Structure, PostData]);
        assert_eq!(
            Phase::for_job(true, false, false),
            [Structure, FullData, PostData, LoadWindow]
        );
        assert_eq!(
            Phase::for_job(true, true, true),
            [Structure, FullData, PostData, Incremental, Verification]
        );
        assert_eq!(
            Phase::for_job(false, false, true),
            [Structure, PostData, Verification]
        );
    }

    #[test]
    fn phases_run_in_declaration_order() {
        let mut sorted = Phase::ALL;
        sorted.sort();
        assert_eq!(sorted, Phase::ALL);
        assert!(!Phase::LoadWindow.announced() && Phase::FullData.announced());
    }
}
