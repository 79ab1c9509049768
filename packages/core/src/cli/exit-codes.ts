/** Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage. */
export const EXIT_RUNTIME = 1;
/** Bad configuration or usage. */
export const EXIT_USAGE = 2;
