package ir

// The rng op draws from Philox4x32-10 (Salmon et al. 2011): every backend
// computes the same counter-based stream with these multipliers and Weyl
// key increments.
const (
	PhiloxM0 = 0xD2511F53
	PhiloxM1 = 0xCD9E8D57
	PhiloxW0 = 0x9E3779B9
	PhiloxW1 = 0xBB67AE85
)
