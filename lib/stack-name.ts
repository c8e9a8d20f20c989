/** The stack's name in the app, and so its template's file name in the cloud assembly. */
export const STACK_NAME = 'NonprofitMailer';
