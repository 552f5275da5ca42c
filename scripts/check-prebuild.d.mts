export function prebuildPath(pkgName: string, platform?: string, arch?: string, libc?: string): string;
export function prebuildProblem(root: string): string | null;
