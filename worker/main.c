/* Placeholder until tickq-worker lands. */
int main(void)
{
    return 1;
}
