// Package models embeds the model files shipped in this folder, so that
// code which trains them by name (xlc experiment) needs no checkout.
package models

import "embed"

// FS holds gpt.xl, bert.xl and mlp.xl.
//
//go:embed *.xl
var FS embed.FS
