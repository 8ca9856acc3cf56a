target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

define internal void @xlc_k0_body(i16* noalias %a0, i16* noalias %out, i64 %lo, i64 %hi) "target-cpu"="x86-64-v3" nounwind alwaysinline {
entry:
	%0 = alloca double
	br label %start1

start1:
	br label %out.head2

out.head2:
	%1 = phi i64 [ %lo, %start1 ], [ %34, %red.exit7 ]
	%2 = icmp slt i64 %1, %hi
	br i1 %2, label %out.body3, label %out.exit4

out.body3:
	store double 0.0, double* %0
	br label %red.head5

out.exit4:
	ret void

red.head5:
	%3 = phi i64 [ 0, %out.body3 ], [ %13, %red.body6 ]
	%4 = icmp slt i64 %3, 5
	br i1 %4, label %red.body6, label %red.exit7

red.body6:
	%5 = mul i64 %1, 5
	%6 = add i64 %5, %3
	%7 = getelementptr i16, i16* %a0, i64 %6
	%8 = load i16, i16* %7
	%9 = bitcast i16 %8 to half
	%10 = fpext half %9 to double
	%11 = load double, double* %0
	%12 = fadd reassoc double %11, %10
	store double %12, double* %0
	%13 = add i64 %3, 1
	br label %red.head5, !llvm.loop !2

red.exit7:
	%14 = load double, double* %0
	%15 = fptrunc double %14 to float
	%16 = fpext float %15 to double
	%17 = fcmp ueq double %16, %14
	%18 = bitcast float %15 to i32
	%19 = call double @llvm.fabs.f64(double %14)
	%20 = fpext float %15 to double
	%21 = call double @llvm.fabs.f64(double %20)
	%22 = fcmp ogt double %21, %19
	%23 = sub i32 %18, 1
	%24 = select i1 %22, i32 %23, i32 %18
	%25 = or i32 %24, 1
	%26 = bitcast i32 %25 to float
	%27 = select i1 %17, float %15, float %26
	%28 = fptrunc float %27 to half
	%29 = fpext half %28 to double
	%30 = fptrunc double %29 to float
	%31 = fptrunc float %30 to half
	%32 = bitcast half %31 to i16
	%33 = getelementptr i16, i16* %out, i64 %1
	store i16 %32, i16* %33
	%34 = add i64 %1, 1
	br label %out.head2
}

define void @xlc_k0(i8** %bufs, i64 %lo, i64 %hi) "target-cpu"="x86-64-v3" nounwind {
entry:
	%0 = getelementptr i8*, i8** %bufs, i64 0
	%1 = load i8*, i8** %0
	%2 = bitcast i8* %1 to i16*
	%3 = getelementptr i8*, i8** %bufs, i64 1
	%4 = load i8*, i8** %3
	%5 = bitcast i8* %4 to i16*
	call void @xlc_k0_body(i16* %2, i16* %5, i64 %lo, i64 %hi)
	ret void
}

declare double @llvm.fabs.f64(double %0) nounwind

!0 = !{!"llvm.loop.interleave.count", i32 1}
!1 = !{!"llvm.loop.vectorize.width", i32 8}
!2 = distinct !{!2, !0, !1}
