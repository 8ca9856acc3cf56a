target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

define internal void @xlc_k0_body(float* noalias %a0, float* noalias %out, i64 %lo, i64 %hi) "target-cpu"="x86-64-v3" nounwind alwaysinline {
entry:
	br label %start1

start1:
	br label %row.head2

row.head2:
	%0 = phi i64 [ %lo, %start1 ], [ %16, %col.exit7 ]
	%1 = icmp slt i64 %0, %hi
	br i1 %1, label %row.body3, label %row.exit4

row.body3:
	%2 = udiv i64 %0, 8
	%3 = mul i64 %2, 8
	%4 = sub i64 %0, %3
	%5 = sub i64 %hi, %0
	%6 = add i64 %4, %5
	%7 = icmp slt i64 %6, 8
	%8 = select i1 %7, i64 %6, i64 8
	br label %col.head5

row.exit4:
	ret void

col.head5:
	%9 = phi i64 [ %4, %row.body3 ], [ %15, %col.body6 ]
	%10 = icmp slt i64 %9, %8
	br i1 %10, label %col.body6, label %col.exit7

col.body6:
	%11 = add i64 %3, %9
	%12 = getelementptr float, float* %a0, i64 %9
	%13 = load float, float* %12
	%14 = getelementptr float, float* %out, i64 %11
	store float %13, float* %14
	%15 = add i64 %9, 1
	br label %col.head5

col.exit7:
	%16 = add i64 %3, %8
	br label %row.head2
}

define void @xlc_k0(i8** %bufs, i64 %lo, i64 %hi) "target-cpu"="x86-64-v3" nounwind {
entry:
	%0 = getelementptr i8*, i8** %bufs, i64 0
	%1 = load i8*, i8** %0
	%2 = bitcast i8* %1 to float*
	%3 = getelementptr i8*, i8** %bufs, i64 1
	%4 = load i8*, i8** %3
	%5 = bitcast i8* %4 to float*
	call void @xlc_k0_body(float* %2, float* %5, i64 %lo, i64 %hi)
	ret void
}

define internal void @xlc_k1_body(float* noalias %a0, float* noalias %a1, float* noalias %out, i64 %lo, i64 %hi) "target-cpu"="x86-64-v3" nounwind alwaysinline {
entry:
	br label %start1

start1:
	br label %row.head2

row.head2:
	%0 = phi i64 [ %lo, %start1 ], [ %19, %col.exit7 ]
	%1 = icmp slt i64 %0, %hi
	br i1 %1, label %row.body3, label %row.exit4

row.body3:
	%2 = udiv i64 %0, 8
	%3 = mul i64 %2, 8
	%4 = sub i64 %0, %3
	%5 = sub i64 %hi, %0
	%6 = add i64 %4, %5
	%7 = icmp slt i64 %6, 8
	%8 = select i1 %7, i64 %6, i64 8
	br label %col.head5

row.exit4:
	ret void

col.head5:
	%9 = phi i64 [ %4, %row.body3 ], [ %18, %col.body6 ]
	%10 = icmp slt i64 %9, %8
	br i1 %10, label %col.body6, label %col.exit7

col.body6:
	%11 = add i64 %3, %9
	%12 = getelementptr float, float* %a0, i64 %11
	%13 = load float, float* %12
	%14 = getelementptr float, float* %a1, i64 %11
	%15 = load float, float* %14
	%16 = fmul float %13, %15
	%17 = getelementptr float, float* %out, i64 %11
	store float %16, float* %17
	%18 = add i64 %9, 1
	br label %col.head5

col.exit7:
	%19 = add i64 %3, %8
	br label %row.head2
}

define void @xlc_k1(i8** %bufs, i64 %lo, i64 %hi) "target-cpu"="x86-64-v3" nounwind {
entry:
	%0 = getelementptr i8*, i8** %bufs, i64 0
	%1 = load i8*, i8** %0
	%2 = bitcast i8* %1 to float*
	%3 = getelementptr i8*, i8** %bufs, i64 1
	%4 = load i8*, i8** %3
	%5 = bitcast i8* %4 to float*
	%6 = getelementptr i8*, i8** %bufs, i64 2
	%7 = load i8*, i8** %6
	%8 = bitcast i8* %7 to float*
	call void @xlc_k1_body(float* %2, float* %5, float* %8, i64 %lo, i64 %hi)
	ret void
}
