//! Property tests over the incident planner.
