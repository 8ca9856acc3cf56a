module xlc

go 1.26.0

require golang.org/x/tools v0.52.0

require github.com/x448/float16 v0.8.4
