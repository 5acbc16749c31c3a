//! Health checking for maglev: probes, the rise/fall state machine and the
//! checker that owns every backend. It never knows about VPP.
#![forbid(unsafe_code)]
